// blockap_trace.cc — runs Block-AP's training (train/block_ap.h) on one block of a real checkpoint
// and prints what the PyTorch reference (tests/reference/blockap_ref.py) must reproduce: the loss
// of every step, the validation loss of every epoch and the window order used. The block's
// inputs are the full-precision hidden states of the given token windows (blocks before it run
// in full precision, so the quantized model's inputs equal the full-precision ones), its targets
// the full-precision block's outputs; every linear gets a min–max asymmetric group quantizer.
//   blockap_trace MODEL_DIR IDS_FILE BLOCK BITS GROUP EPOCHS TRAIN_BATCH VAL_WINDOWS WEIGHT_LR QUANT_LR SEED [GRAD_FILE]
// IDS_FILE: one window per line, the same number of token ids on each. Output: JSON on stdout.
// GRAD_FILE: before training, the gradient of the MSE over windows 0 and 1 (the loss of one
// batch of 2) with respect to every trained tensor and the two norms, as raw float32 in this
// order: per linear (q, k, v, o, gate, up, down) its weight [out, in], scales, zeros; then
// input_layernorm, post_attention_layernorm.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "dist/comm.h"
#include "model/llama_weights.h"
#include "train/block_ap.h"
#include "train/block_grad.h"

using namespace qsweep;

int main(int argc, char** argv) {
  if (argc != 12 && argc != 13) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IDS_FILE BLOCK BITS GROUP EPOCHS TRAIN_BATCH VAL_WINDOWS WEIGHT_LR QUANT_LR SEED [GRAD_FILE]\n", argv[0]);
    return 2;
  }
  try {
    LlamaWeights m(argv[1]);
    const ModelConfig& cfg = m.config();
    std::vector<std::vector<int32_t>> wins;
    std::ifstream in(argv[2]);
    QS_CHECK(in, argv[2] << ": cannot open");
    for (std::string line; std::getline(in, line);) {
      std::istringstream ls(line);
      std::vector<int32_t> ids;
      for (int32_t t; ls >> t;) ids.push_back(t);
      if (!ids.empty()) wins.push_back(ids);
    }
    QS_CHECK(!wins.empty(), argv[2] << ": no windows");
    const int n = static_cast<int>(wins.size()), ctx = static_cast<int>(wins[0].size()), block = std::atoi(argv[3]);
    const size_t per = static_cast<size_t>(ctx) * cfg.hidden_size;
    std::vector<float> x(per * n);
    for (int w = 0; w < n; ++w) {
      QS_CHECK(static_cast<int>(wins[w].size()) == ctx, argv[2] << ": window " << w << " has " << wins[w].size() << " ids, not " << ctx);
      m.embed(wins[w].data(), ctx, x.data() + w * per);
    }
    BlockTape<float> tape;
    for (int b = 0; b < block; ++b) {
      const BlockParams<float> fp = block_params_from<float>(*m.load_block(b));
      for (int w = 0; w < n; ++w) block_forward(cfg, fp, x.data() + w * per, 1, ctx, tape);
    }
    BlockParams<float> p = block_params_from<float>(*m.load_block(block));
    std::vector<float> y = x;
    for (int w = 0; w < n; ++w) block_forward(cfg, p, y.data() + w * per, 1, ctx, tape);
    const int bits = std::atoi(argv[4]), group = std::atoi(argv[5]);
    for (int l = 0; l < kNumLinear; ++l) init_linear_quant_minmax(cfg, p, static_cast<Linear>(l), bits, group);
    if (argc == 13) {  // the first batch's gradient, windows 0 and 1 each alone (as training runs them)
      QS_CHECK(n >= 2, "the gradient needs 2 windows");
      BlockParams<float> sum;
      for (int w = 0; w < 2; ++w) {
        std::vector<float> out(x.begin() + w * per, x.begin() + (w + 1) * per), dy(per);
        block_forward(cfg, p, out.data(), 1, ctx, tape);
        for (size_t i = 0; i < per; ++i) dy[i] = static_cast<float>(2.0 * (static_cast<double>(out[i]) - y[w * per + i]) / (2.0 * per));
        BlockParams<float> g;
        block_backward(cfg, p, tape, dy.data(), g, dy.data());
        if (w == 0) sum = g;
        else {
          auto add = [](std::vector<float>& a, const std::vector<float>& b) { for (size_t i = 0; i < a.size(); ++i) a[i] += b[i]; };
          add(sum.qkv, g.qkv), add(sum.o, g.o), add(sum.gate_up, g.gate_up), add(sum.down, g.down);
          add(sum.input_norm, g.input_norm), add(sum.post_norm, g.post_norm);
          for (int l = 0; l < kNumLinear; ++l) add(sum.quant[l].scales, g.quant[l].scales), add(sum.quant[l].zeros, g.quant[l].zeros);
        }
      }
      std::ofstream gf(argv[12], std::ios::binary);
      auto put = [&](const float* a, size_t k) { gf.write(reinterpret_cast<const char*>(a), static_cast<std::streamsize>(k * sizeof(float))); };
      for (int l = 0; l < kNumLinear; ++l) {
        const LinearRows lr = linear_rows(cfg, static_cast<Linear>(l));
        put(sum.matrix(static_cast<Linear>(l)).data() + static_cast<size_t>(lr.row0) * lr.in, static_cast<size_t>(lr.out) * lr.in);
        put(sum.quant[l].scales.data(), sum.quant[l].scales.size());
        put(sum.quant[l].zeros.data(), sum.quant[l].zeros.size());
      }
      put(sum.input_norm.data(), sum.input_norm.size());
      put(sum.post_norm.data(), sum.post_norm.size());
      QS_CHECK(gf.good(), argv[12] << ": cannot write");
    }
    BlockApOptions o;
    o.epochs = std::atoi(argv[6]), o.train_batch = std::atoi(argv[7]), o.val_windows = std::atoi(argv[8]);
    o.weight_lr = std::atof(argv[9]), o.quant_lr = std::atof(argv[10]), o.seed = std::strtoull(argv[11], nullptr, 10);
    const Comm comm = Comm::local();
    const BlockApCurve c = train_block_ap(cfg, p, BlockApData{x, y, 0, n, n, ctx}, o, comm);
    nlohmann::json j;
    j["train_loss"] = c.train_loss, j["val_loss"] = c.val_loss, j["order"] = c.order;
    std::cout << j.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blockap_trace: %s\n", e.what());
    return 1;
  }
}
