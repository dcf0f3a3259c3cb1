// test_block_prefetch.cc — eval/block_prefetch.h: loading the next block on a host thread while
// the current one runs changes no bit of an evaluation (on the CPU, where it is forced on here;
// its default is on for GPUs only), across chunks that start the blocks over, and a load's error
// still reaches the caller.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"
#include "eval/block_prefetch.h"
#include "eval/perplexity.h"
#include "eval/windows.h"
#include "model/llama_weights.h"
#include "model/synthetic_model.h"
#include "test_util.h"

namespace qsweep {
namespace {

TEST(BlockPrefetch, EvaluationIsTheSameBitsWithAndWithoutPrefetch) {
  const std::string dir = test::scratch_dir("block_prefetch_eval");
  SyntheticModelSpec spec;
  spec.hidden = 64, spec.intermediate = 96, spec.layers = 4, spec.heads = 4, spec.kv_heads = 2, spec.vocab = 301;
  spec.seed = 7;
  write_synthetic_model(dir, spec);
  LlamaWeights m(dir);
  std::vector<int32_t> doc(2000);
  for (size_t i = 0; i < doc.size(); ++i) doc[i] = static_cast<int32_t>((i * 41 + 5) % spec.vocab);
  const EvalWindows w = make_windows(Protocol::Gptq, doc, SpecialTokens{}, 64);
  EvalOptions opt;
  opt.batch = 2;
  opt.progress = false;
  opt.activation_budget = 2 * 64 * 64 * 4 * 2;  // two batches per chunk: several chunks, blocks start over
  opt.prefetch = 0;
  const EvalResult off = evaluate_perplexity(m, w, Comm::local(), opt);
  opt.prefetch = 1;
  const EvalResult on = evaluate_perplexity(m, w, Comm::local(), opt);
  EXPECT_EQ(on.perplexity, off.perplexity);
  EXPECT_EQ(on.window_nll, off.window_nll);
  EXPECT_GT(w.n_windows, 8);  // more than one chunk
}

TEST(BlockPrefetch, BlocksComeInAnyOrderAndEqualPlainLoads) {
  const std::string dir = test::scratch_dir("block_prefetch_order");
  SyntheticModelSpec spec;
  spec.hidden = 32, spec.intermediate = 48, spec.layers = 3, spec.heads = 2, spec.kv_heads = 1, spec.vocab = 50;
  write_synthetic_model(dir, spec);
  LlamaWeights m(dir);
  BlockPrefetch pf(m, true);
  std::unique_ptr<BlockWeights> b;
  for (int l : {0, 1, 2, 0, 2, 1, 0}) {  // in order, then out of order (the prefetched block unused)
    b = pf.take(l, std::move(b));
    const std::unique_ptr<BlockWeights> ref = m.load_block(l);
    ASSERT_EQ(b->index, l);
    EXPECT_EQ(b->qkv, ref->qkv) << "block " << l;
    EXPECT_EQ(b->down, ref->down) << "block " << l;
    EXPECT_EQ(b->input_norm, ref->input_norm) << "block " << l;
  }
}

TEST(BlockPrefetch, ALoadErrorReachesTheCaller) {
  const std::string dir = test::scratch_dir("block_prefetch_error");
  SyntheticModelSpec spec;
  spec.hidden = 32, spec.intermediate = 48, spec.layers = 2, spec.heads = 2, spec.kv_heads = 1, spec.vocab = 50;
  spec.dtype = DType::F32;
  write_synthetic_model(dir, spec);
  LlamaWeights m(dir);
  // Corrupt block 1's first weights to NaN after opening: its load (prefetched while block 0 is
  // handed out) must throw from take(1), not vanish on the loader thread.
  {
    std::fstream f(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    const TensorInfo* t = m.checkpoint().find("model.layers.1.self_attn.q_proj.weight");
    ASSERT_NE(t, nullptr);
    uint64_t header = 0;
    f.read(reinterpret_cast<char*>(&header), 8);
    f.seekp(static_cast<std::streamoff>(8 + header + t->begin));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    f.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  }
  BlockPrefetch pf(m, true);
  std::unique_ptr<BlockWeights> b = pf.take(0, nullptr);
  try {
    pf.take(1, std::move(b));
    ADD_FAILURE() << "block 1's NaN did not stop the load";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qsweep
