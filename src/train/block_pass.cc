// block_pass.cc — the CPU BlockPass (block_forward/block_backward on a kept tape), the CPU
// HeadPass (head_loss_forward/backward), and the choice of pass by device.
#include "train/block_pass.h"

#include <numeric>
#include <vector>

#include "core/device.h"
#include "core/error.h"

namespace qsweep {

namespace {

class CpuBlockPass : public BlockPass {
 public:
  explicit CpuBlockPass(const ModelConfig& cfg) : cfg_(cfg) {}
  void set_params(const BlockParams<float>& p) override { p_ = &p; }
  void forward(float* x, int n_seq, int seq_len) override {
    QS_CHECK(p_, "block pass: forward before set_params");
    block_forward(cfg_, *p_, x, n_seq, seq_len, tape_);
  }
  void backward(const float* dy, BlockParams<float>& grads, float* dx) override {
    QS_CHECK(p_, "block pass: backward before set_params");
    block_backward(cfg_, *p_, tape_, dy, grads, dx);
  }
  const char* device_name() const override { return "cpu"; }

 private:
  ModelConfig cfg_;
  const BlockParams<float>* p_ = nullptr;
  BlockTape<float> tape_;
};

class CpuHeadPass : public HeadPass {
 public:
  CpuHeadPass(const ModelConfig& cfg, const HeadWeights& head) : cfg_(cfg), head_(head) {}
  double loss_and_grad(const float* x, int64_t x_rows, int64_t n, const int32_t* targets, float* dx) override {
    rows_.resize(static_cast<size_t>(n));
    std::iota(rows_.begin(), rows_.end(), int64_t(0));
    const double loss = head_loss_forward(cfg_, head_.norm.data(), head_.lm_head.data(), x, rows_.data(), targets, n, tape_);
    head_loss_backward(cfg_, head_.norm.data(), head_.lm_head.data(), rows_.data(), targets, tape_, 1.0f, x_rows, dx,
                       static_cast<float*>(nullptr), static_cast<float*>(nullptr));
    return loss;
  }

 private:
  ModelConfig cfg_;
  const HeadWeights& head_;
  std::vector<int64_t> rows_;
  HeadTape<float> tape_;
};

}  // namespace

std::unique_ptr<HeadPass> make_head_pass(const ModelConfig& cfg, const HeadWeights& head) {
  const ComputeDevice& d = current_device();
  if (d.kind == DeviceKind::Cuda) return make_cuda_head_pass(cfg, head, d.ordinal);
  return std::make_unique<CpuHeadPass>(cfg, head);
}

std::unique_ptr<BlockPass> make_block_pass(const ModelConfig& cfg) {
  const ComputeDevice& d = current_device();
  if (d.kind == DeviceKind::Cuda) return make_cuda_block_pass(cfg, d.ordinal);
  return std::make_unique<CpuBlockPass>(cfg);
}

}  // namespace qsweep
