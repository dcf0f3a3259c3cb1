// kl_probe.h — the kl-probe sensitivity score: one linear quantized alone (every other weight full
// precision), the model run on held-out probe windows, and the mean KL(full ‖ probed) per
// position against the full-precision model's output. The full-precision hidden states at every
// block's input and the full-precision logits are computed once, so a probe of block b runs blocks
// b..L−1 (loaded from the memory-mapped checkpoint as needed) and the head only. Probes are independent: any rank may run any of them and gets the same
// bits (fixed batches of `batch` windows).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/forward.h"
#include "model/llama_weights.h"
#include "quant/grid.h"

namespace qsweep {

class KlProbe {
 public:
  // windows: [n, ctx] token ids. Memory: n·ctx·(hidden·blocks + vocab)·4 bytes; throws naming
  // --probe-windows when that exceeds budget_bytes.
  KlProbe(const LlamaWeights& model, std::vector<int32_t> windows, int n, int ctx, int batch, int64_t budget_bytes);
  // Mean KL over every position of the probe windows with linear `l` of block `block` replaced by
  // the dequantized q (no other change).
  double kl(int block, Linear l, const QuantizedLinear& q);
  int64_t positions() const { return static_cast<int64_t>(n_) * ctx_; }

 private:
  const LlamaWeights& model_;
  int n_, ctx_, batch_;
  std::vector<int32_t> ids_;
  std::vector<std::vector<float>> block_in_;  // per block: [n*ctx, hidden] full-precision inputs
  std::vector<float> ref_logits_;             // [n*ctx, vocab]
  HeadWeights head_;
  std::unique_ptr<LlamaForward> fwd_;  // on this process's device
};

// Spearman's rank correlation (ties get their average rank); NaN when either side is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace qsweep
