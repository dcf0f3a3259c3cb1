// block_pass.h — the device seam of training (issue 12): where a block's differentiable forward
// and backward (train/block_grad.h) run, and the head's loss and gradient (train/grad_ops.h
// head_loss_*). Block-AP (train/block_ap.cc) and the fisher score (train/fisher.cc) call a
// BlockPass and a HeadPass, never block_forward/block_backward or the head's ops directly:
//  - on the CPU it is block_forward/block_backward themselves (same bits as before the seam);
//  - with --device cuda it is kernels/ BlockGrad (qsweep/cuda/block_grad.h): the parameters go to
//    the GPU once per set_params (once per training step), the tape stays there between forward
//    and backward, and only x, dy, dx and the gradients cross as host arrays. fp32 with TF32 off:
//    gradients agree with the CPU's to fp32 rounding, not bit for bit (issue 12's accuracy rule).
#pragma once
#include <cstdint>
#include <memory>

#include "model/config.h"
#include "model/forward.h"
#include "train/block_grad.h"

namespace qsweep {

class BlockPass {
 public:
  virtual ~BlockPass() = default;
  // The parameters the next calls use; p must stay alive and unchanged until the next set_params
  // (the CPU pass reads it in place; the CUDA pass copies it to the device here).
  virtual void set_params(const BlockParams<float>& p) = 0;
  // x [n_seq·seq_len, hidden] → the block's output in place; what the backward needs is kept.
  virtual void forward(float* x, int n_seq, int seq_len) = 0;
  // The last forward's gradients: every tensor of the parameters into grads (resized and
  // overwritten, as block_backward), the input's into dx (may alias dy).
  virtual void backward(const float* dy, BlockParams<float>& grads, float* dx) = 0;
  virtual const char* device_name() const = 0;
};

// On this process's device (core/device.h current_device()).
std::unique_ptr<BlockPass> make_block_pass(const ModelConfig& cfg);
// The CUDA pass on device `ordinal` (train/block_pass_cuda.cc; throws in a build without CUDA).
std::unique_ptr<BlockPass> make_cuda_block_pass(const ModelConfig& cfg, int ordinal);

// The head as a loss (the fisher score's): final norm, ÷ the logit divisor, lm_head, mean NLL.
class HeadPass {
 public:
  virtual ~HeadPass() = default;
  // x [x_rows, hidden]; rows 0..n−1 scored against targets[n]: returns their mean NLL, and dx
  // [x_rows, hidden] gets its gradient (0 on the other rows). The CPU pass is head_loss_forward
  // and head_loss_backward (dloss 1), the CUDA pass keeps the head's weights and logits on the GPU.
  virtual double loss_and_grad(const float* x, int64_t x_rows, int64_t n, const int32_t* targets, float* dx) = 0;
};

// On this process's device; `head` must outlive the pass.
std::unique_ptr<HeadPass> make_head_pass(const ModelConfig& cfg, const HeadWeights& head);
std::unique_ptr<HeadPass> make_cuda_head_pass(const ModelConfig& cfg, const HeadWeights& head, int ordinal);

}  // namespace qsweep
