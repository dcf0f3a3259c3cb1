// block_pass.cc — the CPU BlockPass (block_forward/block_backward on a kept tape) and the choice
// of pass by device.
#include "train/block_pass.h"

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

}  // namespace

std::unique_ptr<BlockPass> make_block_pass(const ModelConfig& cfg) {
  const ComputeDevice& d = current_device();
  if (d.kind == DeviceKind::Cuda) return make_cuda_block_pass(cfg, d.ordinal);
  return std::make_unique<CpuBlockPass>(cfg);
}

}  // namespace qsweep
