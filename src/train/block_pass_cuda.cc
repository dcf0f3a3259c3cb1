// block_pass_cuda.cc — the CUDA BlockPass and HeadPass: adapt kernels/ BlockGrad
// (qsweep/cuda/block_grad.h) to BlockParams<float>, and HeadGrad (qsweep/cuda/head_grad.h) to
// HeadWeights. set_params uploads the block's tensors and quantizers (the device computes
// the fake-quantized weights); forward/backward move only x, dy, dx and the gradients. CUDA,
// cuBLAS and allocation failures become qsweep::Error ("cuda block pass: ..."). Built only with
// QSWEEP_WITH_CUDA; without it make_cuda_block_pass and make_cuda_head_pass throw (never reached: select_device refuses
// --device cuda first).
#include "core/error.h"
#include "train/block_pass.h"

#ifdef QSWEEP_WITH_CUDA
#include <set>

#include "model/forward_cuda.h"
#include "qsweep/cuda/block_grad.h"
#include "qsweep/cuda/head_grad.h"

namespace qsweep {

namespace {

const float* opt(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }
float* opt(std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

// The fused matrix holding module l: 0 qkv, 1 o, 2 gate_up, 3 down.
int matrix_of(Linear l) {
  switch (l) {
    case Linear::Q:
    case Linear::K:
    case Linear::V: return 0;
    case Linear::O: return 1;
    case Linear::Gate:
    case Linear::Up: return 2;
    default: return 3;
  }
}

class CudaBlockPass : public BlockPass {
 public:
  CudaBlockPass(const ModelConfig& cfg, int ordinal) : cfg_(cfg) {
    static_assert(kNumLinear == cuda::kGradLinears, "one quantizer view per linear module");
    cuda_guarded("block pass", [&] { engine_ = std::make_unique<cuda::BlockGrad>(cuda_block_dims(cfg), ordinal); });
  }

  void set_params(const BlockParams<float>& p) override {
    check_block_params(cfg_, p);
    cuda::BlockWeightsView w;
    w.input_norm = p.input_norm.data(), w.post_norm = p.post_norm.data();
    w.q_norm = opt(p.q_norm), w.k_norm = opt(p.k_norm);
    w.qkv = p.qkv.data(), w.qkv_bias = opt(p.qkv_bias), w.o = p.o.data(), w.o_bias = opt(p.o_bias);
    w.gate_up = p.gate_up.data(), w.gate_up_bias = opt(p.gate_up_bias);
    w.down = p.down.data(), w.down_bias = opt(p.down_bias);
    cuda::LinearGradView mods[cuda::kGradLinears];
    for (int m = 0; m < kNumLinear; ++m) {
      const Linear l = static_cast<Linear>(m);
      const LinearRows lr = linear_rows(cfg_, l);
      const LinearQuant<float>& q = p.quant[m];
      mods[m] = cuda::LinearGradView{matrix_of(l), lr.row0, lr.out, lr.in, q.bits, q.group,
                                     q.enabled() ? q.scales.data() : nullptr, q.enabled() ? q.zeros.data() : nullptr};
    }
    cuda_guarded("block pass", [&] { engine_->upload(w, mods); });
    p_ = &p;
  }

  void forward(float* x, int n_seq, int seq_len) override {
    QS_CHECK(p_, "block pass: forward before set_params");
    if (!ropes_.count(seq_len)) {
      const RopeTableT<float> t(cfg_, seq_len);
      cuda_guarded("block pass", [&] { engine_->set_rope(seq_len, t.half, t.cos.data(), t.sin.data()); });
      ropes_.insert(seq_len);
    }
    cuda_guarded("block pass", [&] { engine_->forward(x, n_seq, seq_len); });
  }

  void backward(const float* dy, BlockParams<float>& g, float* dx) override {
    QS_CHECK(p_, "block pass: backward before set_params");
    const BlockParams<float>& p = *p_;
    auto like = [](const std::vector<float>& v, std::vector<float>& z) { z.assign(v.size(), 0.0f); };
    like(p.input_norm, g.input_norm), like(p.post_norm, g.post_norm), like(p.q_norm, g.q_norm), like(p.k_norm, g.k_norm);
    like(p.qkv, g.qkv), like(p.qkv_bias, g.qkv_bias), like(p.o, g.o), like(p.o_bias, g.o_bias);
    like(p.gate_up, g.gate_up), like(p.gate_up_bias, g.gate_up_bias), like(p.down, g.down), like(p.down_bias, g.down_bias);
    cuda::BlockGradOut out;
    out.input_norm = g.input_norm.data(), out.post_norm = g.post_norm.data();
    out.q_norm = opt(g.q_norm), out.k_norm = opt(g.k_norm);
    out.qkv = g.qkv.data(), out.qkv_bias = opt(g.qkv_bias), out.o = g.o.data(), out.o_bias = opt(g.o_bias);
    out.gate_up = g.gate_up.data(), out.gate_up_bias = opt(g.gate_up_bias);
    out.down = g.down.data(), out.down_bias = opt(g.down_bias);
    for (int m = 0; m < kNumLinear; ++m) {
      g.quant[m].bits = p.quant[m].bits, g.quant[m].group = p.quant[m].group;
      like(p.quant[m].scales, g.quant[m].scales), like(p.quant[m].zeros, g.quant[m].zeros);
      out.scales[m] = opt(g.quant[m].scales), out.zeros[m] = opt(g.quant[m].zeros);
    }
    cuda_guarded("block pass", [&] { engine_->backward(dy, out, dx); });
  }

  const char* device_name() const override { return "cuda"; }

 private:
  ModelConfig cfg_;
  std::unique_ptr<cuda::BlockGrad> engine_;
  const BlockParams<float>* p_ = nullptr;
  std::set<int> ropes_;
};

class CudaHeadPass : public HeadPass {
 public:
  CudaHeadPass(const ModelConfig& cfg, const HeadWeights& head, int ordinal) {
    QS_CHECK(head.norm.size() == static_cast<size_t>(cfg.hidden_size) &&
                 head.lm_head.size() == static_cast<size_t>(cfg.vocab_size) * cfg.hidden_size,
             "head pass: the head's tensors are not [hidden] and [vocab, hidden]");
    const cuda::BlockDims d = cuda_block_dims(cfg);
    cuda_guarded("head pass", [&] {
      engine_ = std::make_unique<cuda::HeadGrad>(d.hidden, d.eps, ordinal, d.bf16_gemm);
      engine_->upload(head.norm.data(), head.lm_head.data(), cfg.vocab_size,
                      cfg.mup_scaling ? static_cast<float>(cfg.logit_divisor()) : 1.0f);
    });
  }
  double loss_and_grad(const float* x, int64_t x_rows, int64_t n, const int32_t* targets, float* dx) override {
    QS_CHECK(n > 0 && n <= x_rows, "head pass: " << n << " scored rows of " << x_rows);
    double loss = 0;
    cuda_guarded("head pass", [&] { loss = engine_->loss_and_grad(x, x_rows, n, targets, dx); });
    return loss;
  }

 private:
  std::unique_ptr<cuda::HeadGrad> engine_;
};

}  // namespace

std::unique_ptr<BlockPass> make_cuda_block_pass(const ModelConfig& cfg, int ordinal) {
  return std::make_unique<CudaBlockPass>(cfg, ordinal);
}

std::unique_ptr<HeadPass> make_cuda_head_pass(const ModelConfig& cfg, const HeadWeights& head, int ordinal) {
  return std::make_unique<CudaHeadPass>(cfg, head, ordinal);
}

}  // namespace qsweep

#else

namespace qsweep {
std::unique_ptr<BlockPass> make_cuda_block_pass(const ModelConfig&, int) {
  QS_THROW("the CUDA training pass is not in this build (rebuild with cmake -DQSWEEP_WITH_CUDA=ON)");
}
std::unique_ptr<HeadPass> make_cuda_head_pass(const ModelConfig&, const HeadWeights&, int) {
  QS_THROW("the CUDA training pass is not in this build (rebuild with cmake -DQSWEEP_WITH_CUDA=ON)");
}
}  // namespace qsweep

#endif
