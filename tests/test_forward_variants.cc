// test_forward_variants.cc — the C++ forward pass against the independent float64 NumPy
// reference (tests/reference/llama_ref.py) on synthetic checkpoints covering what the bundled
// model does not: qwen2 q/k/v biases, qwen3 q/k norms, minicpm's scaling, tied embeddings, llama3
// rope scaling, fp16 and fp32 storage, sharded checkpoints, MHA and GQA — plus the observer and
// weight-substitution seam.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "model/forward.h"
#include "model/synthetic_model.h"
#include "test_util.h"

namespace qsweep {
namespace {

struct Variant {
  const char* name;
  SyntheticModelSpec spec;
};

SyntheticModelSpec tiny() {
  SyntheticModelSpec s;
  s.hidden = 64;
  s.intermediate = 96;
  s.layers = 2;
  s.heads = 4;
  s.kv_heads = 2;
  s.vocab = 101;
  s.dtype = DType::BF16;
  s.seed = 7;
  return s;
}

std::vector<Variant> variants() {
  std::vector<Variant> v;
  v.push_back({"llama_gqa_bf16", tiny()});
  auto q = tiny(); q.model_type = "qwen2"; q.dtype = DType::F32; v.push_back({"qwen2_bias_f32", q});
  auto t = tiny(); t.tie_embeddings = true; t.dtype = DType::F16; v.push_back({"tied_f16", t});
  auto r = tiny(); r.llama3_rope = true; r.rope_theta = 500000; v.push_back({"llama3_rope", r});
  auto s = tiny(); s.shards = 3; s.kv_heads = 4; v.push_back({"sharded_mha", s});
  auto h = tiny(); h.head_dim = 32; h.heads = 4; h.kv_heads = 1; v.push_back({"head_dim_mqa", h});
  // qwen3: per-head q/k RMSNorm, head_dim independent of hidden/heads (q_dim 128 != hidden 64).
  auto q3 = tiny(); q3.model_type = "qwen3"; q3.head_dim = 32; q3.dtype = DType::F32;
  v.push_back({"qwen3_qknorm_f32", q3});
  auto q3t = tiny(); q3t.model_type = "qwen3"; q3t.head_dim = 24; q3t.tie_embeddings = true;
  v.push_back({"qwen3_tied_bf16", q3t});
  // minicpm: scale_emb, residual × scale_depth/sqrt(L), lm_head input ÷ hidden/dim_model_base.
  auto mc = tiny(); mc.model_type = "minicpm"; mc.tie_embeddings = true;
  mc.scale_emb = 2.5; mc.scale_depth = 0.6; mc.dim_model_base = 24;
  v.push_back({"minicpm_tied_bf16", mc});
  auto mcu = mc; mcu.tie_embeddings = false; mcu.dtype = DType::F32; mcu.layers = 3; mcu.scale_emb = 12;
  mcu.scale_depth = 1.4; mcu.dim_model_base = 40;
  v.push_back({"minicpm_untied_f32", mcu});
  return v;
}

std::vector<float> cpp_logits(const std::string& dir, const std::vector<int32_t>& ids) {
  LlamaWeights m(dir);
  const ModelConfig& c = m.config();
  const int n = static_cast<int>(ids.size());
  std::vector<float> x(static_cast<size_t>(n) * c.hidden_size);
  m.embed(ids.data(), n, x.data());
  LlamaForward fwd(c);
  for (int l = 0; l < c.num_hidden_layers; ++l) fwd.run_block(*m.load_block(l), x.data(), 1, n);
  std::vector<int64_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> logits(static_cast<size_t>(n) * c.vocab_size);
  fwd.head_logits(HeadWeights::load(m), x.data(), rows.data(), n, logits.data());
  return logits;
}

class ForwardVariant : public ::testing::TestWithParam<Variant> {};

TEST_P(ForwardVariant, MatchesNumpyReference) {
  const Variant& v = GetParam();
  const std::string dir = test::scratch_dir(v.name);
  write_synthetic_model(dir, v.spec);
  std::mt19937 rng(3);
  std::vector<int32_t> ids(80);  // longer than llama3's 64 original positions
  std::string id_list;
  for (auto& id : ids) {
    id = static_cast<int32_t>(rng() % v.spec.vocab);
    id_list += (id_list.empty() ? "" : ",") + std::to_string(id);
  }
  const std::string out = dir + "/ref.json";
  const auto run = test::run_command("/usr/bin/python3 " + test::source_dir() +
                                     "/tests/reference/llama_ref.py " + dir + " --ids " + id_list +
                                     " --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto ref = test::read_json(out);
  const auto got = cpp_logits(dir, ids);
  const int V = v.spec.vocab;
  double max_diff = 0, max_abs = 0;
  for (size_t p = 0; p < ids.size(); ++p)
    for (int j = 0; j < V; ++j) {
      const double want = ref["logits"][p][j].get<double>();
      max_diff = std::max(max_diff, std::fabs(got[p * V + j] - want));
      max_abs = std::max(max_abs, std::fabs(want));
    }
  EXPECT_LT(max_diff, 2e-4 * std::max(1.0, max_abs)) << v.name << ": max |logit| " << max_abs;
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%.3g (max |logit| %.3g)", max_diff, max_abs);
  RecordProperty("max_abs_diff", buf);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, ForwardVariant, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return std::string(info.param.name); });

// The observer sees every linear input group once per block, with the right widths.
struct Recorder : LinearObserver {
  std::vector<std::pair<int, std::vector<Linear>>> calls;
  std::vector<int> cols;
  void on_linear_input(const LinearInput& in) override {
    calls.push_back({in.block, std::vector<Linear>(in.modules, in.modules + in.n_modules)});
    cols.push_back(in.cols);
  }
};

TEST(ForwardSeam, ObserverAndSubstitution) {
  const std::string dir = test::scratch_dir("seam");
  write_synthetic_model(dir, tiny());
  LlamaWeights m(dir);
  const ModelConfig& c = m.config();
  std::vector<int32_t> ids = {1, 5, 9, 13, 17, 21, 25, 29};
  const int n = static_cast<int>(ids.size());
  std::vector<float> x(static_cast<size_t>(n) * c.hidden_size), x2;
  m.embed(ids.data(), n, x.data());
  x2 = x;
  LlamaForward fwd(c);
  Recorder rec;
  auto b = m.load_block(0);
  fwd.run_block(*b, x.data(), 1, n, &rec);
  ASSERT_EQ(rec.calls.size(), 4u);
  EXPECT_EQ(rec.calls[0].second, (std::vector<Linear>{Linear::Q, Linear::K, Linear::V}));
  EXPECT_EQ(rec.calls[1].second, (std::vector<Linear>{Linear::O}));
  EXPECT_EQ(rec.calls[2].second, (std::vector<Linear>{Linear::Gate, Linear::Up}));
  EXPECT_EQ(rec.calls[3].second, (std::vector<Linear>{Linear::Down}));
  EXPECT_EQ(rec.cols, (std::vector<int>{c.hidden_size, c.q_dim(), c.hidden_size, c.intermediate_size}));

  // Zeroing down_proj removes the MLP's contribution: the output differs, and substituting the
  // original weights back restores the result bit for bit.
  std::vector<float> orig(b->linear(Linear::Down), b->linear(Linear::Down) + c.hidden_size * c.intermediate_size);
  std::vector<float> zeros(orig.size(), 0.0f);
  b->set_linear(Linear::Down, zeros.data());
  std::vector<float> x3 = x2;
  fwd.run_block(*b, x3.data(), 1, n);
  EXPECT_NE(x3, x);
  b->set_linear(Linear::Down, orig.data());
  fwd.run_block(*b, x2.data(), 1, n);
  EXPECT_EQ(x2, x);
}

// Packed sequences (multiple-choice scoring): a shared prefix and three branches in one sequence
// give each branch the final hidden states it gets as its own sequence (prefix + branch), for
// every family's block (GQA, q/k norms, MiniCPM scaling, llama3 RoPE).
TEST_P(ForwardVariant, PackedBranchesEqualSeparateSequences) {
  const Variant& v = GetParam();
  const std::string dir = test::scratch_dir(std::string(v.name) + "_packed");
  write_synthetic_model(dir, v.spec);
  LlamaWeights m(dir);
  const ModelConfig& c = m.config();
  const int H = c.hidden_size;
  std::mt19937 rng(11);
  auto draw = [&](int n) {
    std::vector<int32_t> t(n);
    for (auto& id : t) id = static_cast<int32_t>(rng() % v.spec.vocab);
    return t;
  };
  const std::vector<int32_t> prefix = draw(9);
  const std::vector<std::vector<int32_t>> branches = {draw(5), draw(1), draw(7)};
  std::vector<int32_t> ids = prefix, pos, pend, bbeg;
  for (int p = 0; p < 9; ++p) pos.push_back(p), pend.push_back(0), bbeg.push_back(0);
  std::vector<int> start;
  for (const auto& b : branches) {
    start.push_back(static_cast<int>(ids.size()));
    for (size_t i = 0; i < b.size(); ++i) {
      ids.push_back(b[i]);
      pos.push_back(9 + static_cast<int>(i));
      pend.push_back(9);
      bbeg.push_back(start.back());
    }
  }
  const int n = static_cast<int>(ids.size());
  std::vector<float> x(static_cast<size_t>(n) * H);
  m.embed(ids.data(), n, x.data());
  LlamaForward fwd(c);
  const SeqPacking pk{pos.data(), pend.data(), bbeg.data()};
  for (int l = 0; l < c.num_hidden_layers; ++l) fwd.run_block(*m.load_block(l), x.data(), 1, n, nullptr, &pk);
  double worst = 0;
  for (size_t k = 0; k < branches.size(); ++k) {
    std::vector<int32_t> seq = prefix;
    seq.insert(seq.end(), branches[k].begin(), branches[k].end());
    const int sn = static_cast<int>(seq.size());
    std::vector<float> y(static_cast<size_t>(sn) * H);
    m.embed(seq.data(), sn, y.data());
    LlamaForward f2(c);
    for (int l = 0; l < c.num_hidden_layers; ++l) f2.run_block(*m.load_block(l), y.data(), 1, sn);
    for (int p = 0; p < sn; ++p) {
      const int row = p < 9 ? p : start[k] + (p - 9);
      for (int j = 0; j < H; ++j) {
        const double a = x[static_cast<size_t>(row) * H + j], b = y[static_cast<size_t>(p) * H + j];
        worst = std::max(worst, std::fabs(a - b) / (1.0 + std::fabs(b)));
      }
    }
  }
  EXPECT_LT(worst, 1e-5) << v.name;
}

}  // namespace
}  // namespace qsweep
