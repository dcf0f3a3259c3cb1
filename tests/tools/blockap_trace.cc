// blockap_trace.cc — runs Block-AP's training (train/block_ap.h) on one block of a real checkpoint
// and prints what the PyTorch reference (tests/reference/blockap_ref.py) must reproduce: the loss
// of every step, the validation loss of every epoch and the window order used. The block's
// inputs are the full-precision hidden states of the given token windows (blocks before it run
// in full precision, so the quantized model's inputs equal the full-precision ones), its targets
// the full-precision block's outputs; every linear gets a min–max asymmetric group quantizer.
//   blockap_trace MODEL_DIR IDS_FILE BLOCK BITS GROUP EPOCHS TRAIN_BATCH VAL_WINDOWS WEIGHT_LR QUANT_LR SEED
// IDS_FILE: one window per line, the same number of token ids on each. Output: JSON on stdout.
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
  if (argc != 12) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IDS_FILE BLOCK BITS GROUP EPOCHS TRAIN_BATCH VAL_WINDOWS WEIGHT_LR QUANT_LR SEED\n", argv[0]);
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
