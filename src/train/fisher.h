// fisher.h — the fisher sensitivity score (`qsweep sensitivity --score fisher`): the empirical
// Fisher information of every decoder linear's weights, one sample per calibration window,
//     F_i = (T/n) Σ_w g_{w,i}²,   g_w = ∂(mean next-token NLL of window w)/∂W,  T = ctx − 1,
// (T·g_w² = (Σ_t ∂NLL_t/∂W)²/T: the per-token Fisher where the tokens' gradients are
// uncorrelated, so that the score is in the units of kl-probe, nats per token), and the score of a candidate quantization Q of a layer alone, the second-order estimate of the
// rise in mean NLL (nats per token; ModelOpt's form of Σ (∂L/∂W ⊙ (W − Q(W)))²):
//     fisher(layer, Q) = ½ Σ_i F_i (W_i − Q(W)_i)².
// Gradients come from the backward passes of train/block_grad.h and train/grad_ops.h (fp32), the
// blocks' and the head's on this process's device (train/block_pass.h).
// F is never stored: the constructor keeps, for each of this rank's windows, the full-precision
// input of every block and the gradient of the loss at every block's output (2·blocks·ctx·hidden
// floats per window, checked against a budget); block_scores(b) reruns block b forward and
// backward per window and contracts each window's g² with each candidate's (W − Q(W))² at once.
// Windows are dealt round-robin over ranks and the per-window sums added in window order, so
// every rank count gives the same bits.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "dist/comm.h"
#include "model/llama_weights.h"
#include "quant/grid.h"
#include "train/block_grad.h"
#include "train/block_pass.h"

namespace qsweep {

class FisherProbe {
 public:
  // windows: [n, ctx] token ids (every rank passes all of them); budget_bytes bounds the stored
  // hidden states and gradients of this rank's windows (throws naming the options otherwise).
  FisherProbe(const LlamaWeights& model, const std::vector<int32_t>& windows, int n, int ctx, const Comm& comm,
              int64_t budget_bytes, bool progress);
  // Collective. For block `block`'s linears in Linear order (q, k, v, o, gate, up, down; palette[k]
  // holds linear k's candidates, each approximating the block's full-precision weights):
  // fisher scores [k * C + c].
  std::vector<double> block_scores(int block, const std::vector<const std::vector<QuantizedLinear>*>& palette);
  // The gradient of window `window`'s mean NLL (a window of this rank) w.r.t. linear l of block
  // `block`, [out, in] (for tests and inspection).
  std::vector<float> window_gradient(int block, Linear l, int window);
  int windows() const { return n_; }
  double loss() const { return loss_; }  // mean over windows of the windows' mean NLL

 private:
  const LlamaWeights& model_;
  const Comm& comm_;
  int n_, ctx_;
  std::vector<int> mine_;                      // this rank's window indices
  std::vector<std::vector<float>> x_in_, dy_;  // [block][local window * ctx * hidden]
  double loss_ = 0;
  std::unique_ptr<BlockPass> pass_;
  // Block `block` rerun forward and backward on local window i: grads of every parameter (the
  // block's parameters already set in pass_).
  void block_grads(int block, size_t i, BlockParams<float>& grads, float* dx = nullptr);
};

}  // namespace qsweep
