// forward.cc — block forward: norm → fused QKV GEMM → RoPE → attention → O GEMM (+residual via
// beta=1) → norm → fused gate/up GEMM → SwiGLU → down GEMM (+residual). GEMMs are
// cblas_sgemm(RowMajor, NoTrans, Trans) against HF's [out, in] weights, so weights are used in
// place without a transposed copy. Family steps sit beside that path, taken only when the config
// asks: qwen3's per-head q/k RMSNorm before RoPE; MiniCPM's residual branches computed apart and
// added × scale_depth/sqrt(L), and its lm_head input ÷ hidden/dim_model_base.
#include "model/forward.h"

#include <algorithm>

#include "core/device.h"
#include "core/error.h"
#include "model/cpu_ops.h"
#include "model/forward_cuda.h"
#include "ops/gemm.h"

namespace qsweep {

void gemm_xwt(const float* x, const float* w, float* y, int64_t M, int N, int K, float beta, int64_t ldy) {
  gemm_tiled<float>(false, true, M, N, K, 1.0f, x, K, w, K, beta, y, ldy);
}

namespace {
template <typename T>
T* sized(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
}  // namespace

void head_input(const ModelConfig& cfg, const float* norm, const float* x, float* y, int64_t rows) {
  const int H = cfg.hidden_size;
  rmsnorm(x, norm, y, rows, H, static_cast<float>(cfg.rms_norm_eps));
  if (cfg.mup_scaling) {
    // HF: lm_head(hidden_states / (hidden_size / dim_model_base)), the divisor rounded to fp32.
    const float d = static_cast<float>(cfg.logit_divisor());
    const int64_t n = rows * H;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] /= d;
  }
}

HeadWeights HeadWeights::load(const LlamaWeights& w) {
  HeadWeights h;
  h.norm = w.load_final_norm();
  h.lm_head = w.load_lm_head();
  return h;
}

LlamaForward::LlamaForward(const ModelConfig& cfg) : cfg_(cfg) {}

std::unique_ptr<LlamaForward> make_forward(const ModelConfig& cfg) {
  const ComputeDevice& d = current_device();
  if (d.kind == DeviceKind::Cuda) return make_cuda_forward(cfg, d.ordinal);
  return std::make_unique<LlamaForward>(cfg);
}

const RopeTable& LlamaForward::rope(int seq_len) {
  auto it = ropes_.find(seq_len);
  if (it == ropes_.end()) it = ropes_.emplace(seq_len, RopeTable(cfg_, seq_len)).first;
  return it->second;
}

void LlamaForward::run_block(const BlockWeights& w, float* x, int n_seq, int seq_len,
                             LinearObserver* observer, const SeqPacking* packing) {
  const int64_t M = static_cast<int64_t>(n_seq) * seq_len;
  const int H = cfg_.hidden_size, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), I = cfg_.intermediate_size;
  const int QKV = Q + 2 * KV;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  float* xn = sized(xn_, M * H);
  float* qkv = sized(qkv_, M * QKV);
  float* attn = sized(attn_, M * Q);
  float* gu = sized(gu_, M * 2 * I);
  float* act = sized(act_, M * I);
  // MiniCPM: each residual branch is formed apart, then added × scale_depth / sqrt(L).
  const bool residual_scaled = cfg_.mup_scaling;
  const float residual_scale = static_cast<float>(cfg_.residual_scale());
  float* branch = residual_scaled ? sized(branch_, M * H) : nullptr;
  auto observe = [&](std::initializer_list<Linear> mods, const float* in, int cols) {
    if (!observer) return;
    std::vector<Linear> m(mods);
    observer->on_linear_input(LinearInput{w.index, m.data(), static_cast<int>(m.size()), in, M, cols});
  };

  // Attention half.
  rmsnorm(x, w.input_norm.data(), xn, M, H, eps);
  observe({Linear::Q, Linear::K, Linear::V}, xn, H);
  gemm_xwt(xn, w.qkv.data(), qkv, M, QKV, H, 0.0f, QKV);
  if (!w.qkv_bias.empty()) add_bias(qkv, w.qkv_bias.data(), M, QKV, QKV);
  const RopeTable& rt = rope(seq_len);
  if (cfg_.qk_norm) {
    head_rmsnorm(qkv, QKV, M, cfg_.num_attention_heads, cfg_.head_dim, w.q_norm.data(), eps);
    head_rmsnorm(qkv + Q, QKV, M, cfg_.num_key_value_heads, cfg_.head_dim, w.k_norm.data(), eps);
  }
  const int32_t* pos = packing ? packing->positions : nullptr;
  rope_apply(qkv, QKV, n_seq, seq_len, cfg_.num_attention_heads, rt, pos);
  rope_apply(qkv + Q, QKV, n_seq, seq_len, cfg_.num_key_value_heads, rt, pos);
  AttentionShape as{n_seq, seq_len, cfg_.num_attention_heads, cfg_.num_key_value_heads,
                    cfg_.head_dim, cfg_.sliding_window};
  if (packing) {
    QS_ASSERT(cfg_.sliding_window == 0 || seq_len <= cfg_.sliding_window, "packed sequences with a sliding window");
    as.prefix_end = packing->prefix_end;
    as.branch_begin = packing->branch_begin;
  }
  std::vector<double> entropy;
  if (observer && observer->wants_attention_entropy()) {
    entropy.assign(static_cast<size_t>(n_seq) * cfg_.num_attention_heads, 0.0);
    as.entropy = entropy.data();
  }
  attention(qkv, qkv + Q, qkv + Q + KV, QKV, attn, as);
  if (as.entropy) observer->on_attention_entropy(w.index, entropy.data(), n_seq, cfg_.num_attention_heads, seq_len);
  observe({Linear::O}, attn, Q);
  if (residual_scaled) {
    gemm_xwt(attn, w.o.data(), branch, M, H, Q, 0.0f, H);
    if (!w.o_bias.empty()) add_bias(branch, w.o_bias.data(), M, H, H);
    add_scaled(x, branch, residual_scale, M * H);
  } else {
    gemm_xwt(attn, w.o.data(), x, M, H, Q, 1.0f, H);
    if (!w.o_bias.empty()) add_bias(x, w.o_bias.data(), M, H, H);
  }

  // MLP half.
  rmsnorm(x, w.post_norm.data(), xn, M, H, eps);
  observe({Linear::Gate, Linear::Up}, xn, H);
  gemm_xwt(xn, w.gate_up.data(), gu, M, 2 * I, H, 0.0f, 2 * I);
  if (!w.gate_up_bias.empty()) add_bias(gu, w.gate_up_bias.data(), M, 2 * I, 2 * I);
  silu_mul(gu, act, M, I);
  observe({Linear::Down}, act, I);
  if (residual_scaled) {
    gemm_xwt(act, w.down.data(), branch, M, H, I, 0.0f, H);
    if (!w.down_bias.empty()) add_bias(branch, w.down_bias.data(), M, H, H);
    add_scaled(x, branch, residual_scale, M * H);
  } else {
    gemm_xwt(act, w.down.data(), x, M, H, I, 1.0f, H);
    if (!w.down_bias.empty()) add_bias(x, w.down_bias.data(), M, H, H);
  }
}

std::string LlamaForward::run_block_guarded(const BlockWeights& w, float* x, int n_seq, int seq_len,
                                           const OutputCheck& check, LinearObserver* observer,
                                           const SeqPacking* packing) {
  guard_in_.assign(x, x + static_cast<size_t>(n_seq) * seq_len * cfg_.hidden_size);
  run_block(w, x, n_seq, seq_len, observer, packing);
  return check(guard_in_.data(), x);
}

void LlamaForward::copy_activations(const float* src, float* dst, int64_t n) { std::copy(src, src + n, dst); }

void LlamaForward::head_logits(const HeadWeights& h, const float* x, const int64_t* rows, int64_t n,
                               float* logits) {
  const int H = cfg_.hidden_size;
  float* hx = sized(head_x_, n * H);
  for (int64_t i = 0; i < n; ++i) std::copy(x + rows[i] * H, x + (rows[i] + 1) * H, hx + i * H);
  head_input(cfg_, h.norm.data(), hx, hx, n);
  gemm_xwt(hx, h.lm_head.data(), logits, n, cfg_.vocab_size, H, 0.0f, cfg_.vocab_size);
}

int64_t head_rows_per_slice(int vocab) { return std::max<int64_t>(64, (int64_t(16) << 20) / vocab); }

void LlamaForward::head_nll(const HeadWeights& h, const float* x, const int64_t* rows,
                            const int32_t* targets, int64_t n, double* nll) {
  const int V = cfg_.vocab_size;
  const int64_t chunk = head_rows_per_slice(V);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t m = std::min(chunk, n - i0);
    float* lg = sized(head_logits_, m * V);
    LlamaForward::head_logits(h, x, rows + i0, m, lg);
    rows_nll(lg, m, V, targets + i0, nll + i0);
  }
}

void LlamaForward::head_kl(const HeadWeights& h, const float* x, const int64_t* rows, const HeadWeights& h_ref,
                           const float* x_ref, const int64_t* rows_ref, const int32_t* targets, int64_t n, double* kl,
                           uint8_t* top1, double* nll, double* nll_base) {
  const int V = cfg_.vocab_size;
  const int64_t slice = head_rows_per_slice(V);  // the logits (twice) of a 128k vocabulary stay ~128 MB
  for (int64_t i0 = 0; i0 < n; i0 += slice) {
    const int64_t m = std::min(slice, n - i0);
    float* lg = sized(head_logits_, m * V);
    float* lr = sized(head_logits_ref_, m * V);
    LlamaForward::head_logits(h, x, rows + i0, m, lg);
    LlamaForward::head_logits(h_ref, x_ref, rows_ref + i0, m, lr);
    rows_nll(lg, m, V, targets + i0, nll + i0);
    rows_kl(lr, lg, m, V, kl + i0, top1 + i0);
    rows_nll(lr, m, V, targets + i0, nll_base + i0);
  }
}

double LlamaForward::block_flops(int n_seq, int seq_len) const {
  const double H = cfg_.hidden_size, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), I = cfg_.intermediate_size;
  const double tokens = static_cast<double>(n_seq) * seq_len;
  const double linear = 2.0 * tokens * (H * (Q + 2 * KV) + Q * H + 3 * H * I);
  const double attn = 4.0 * tokens * H * (seq_len / 2.0);  // llama.cpp's count
  return linear + attn;
}

}  // namespace qsweep
