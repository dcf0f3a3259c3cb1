// block_forward.cu — qsweep/cuda/block_forward.h: a decoder block and the head on one GPU.
//
// The step order is model/forward.cc's: norm → fused QKV GEMM (+bias) → qwen3 q/k norm → RoPE →
// attention → O GEMM (+residual via beta = 1, or MiniCPM's scaled branch) → norm → gate/up GEMM →
// SwiGLU → down GEMM (+residual). GEMMs are cuBLAS SGEMM in the default math mode (true FP32;
// TF32 only in --compute-dtype tf32x3's split products, tf32x3.cuh; bf16 operands with
// --compute-dtype bf16) on the engine's own stream.
// Device memory: each buffer grows to the largest request and is kept; an allocation that fails
// says what it was for, how much it asked and how much the device had free.
#include "qsweep/cuda/block_forward.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bf16_operands.cuh"
#include "check.cuh"
#include "device_alloc.cuh"
#include "flash_attention.cuh"
#include "forward_ops.cuh"
#include "gemm_mode.cuh"
#include "grow.cuh"
#include "stage_profile.cuh"
#include "staged_copy.cuh"
#include "tf32x3.cuh"

namespace qsweep::cuda {

using detail::Grow;
using detail::put;

namespace {

struct Head {
  Grow<float> norm, lm_head;
  Grow<__nv_bfloat16> lm_head16;  // --compute-dtype bf16: the weights rounded once (bf16_operands.cuh)
  Grow<float> lm_head2;           // --compute-dtype tf32x3: the weights split once (tf32x3.cuh)
  int vocab = 0;
  float divisor = 1.0f;
};

// QSWEEP_CUDA_PROFILE's stages of this engine (stage_profile.cuh).
enum Stage { kUpload, kNorm, kQkv, kRope, kAttention, kO, kGateUp, kSilu, kDown, kHead, kCopies };

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct BlockForward::Impl {
  BlockDims dims;
  detail::StageProfile prof{"block forward", {"weight upload", "rmsnorm", "qkv GEMM", "bias/qk-norm/rope", "attention",
                                              "o GEMM", "gate/up GEMM", "silu", "down GEMM", "head", "copies"}};
  int ordinal = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  detail::StagedCopy staged;  // the large host<->device copies (weights, hidden states, head rows)
  // Weights of the resident block.
  Grow<float> input_norm, post_norm, q_norm, k_norm, qkv, qkv_bias, o, o_bias, gate_up, gate_up_bias, down, down_bias;
  bool has_qk_norm = false, has_qkv_bias = false, has_o_bias = false, has_gu_bias = false, has_down_bias = false;
  bool block_loaded = false;
  // --compute-dtype bf16: the linears' weights rounded to bf16 once per held block, and the scratch
  // of a GEMM's activation rounded (bf16_operands.cuh).
  Grow<__nv_bfloat16> qkv16, o16, gate_up16, down16, x16;
  Grow<__nv_bfloat16> qkv_act16, probs16;  // bf16 attention: q/k/v rounded once, P rounded by the softmax
  int flash_ok = -1;  // whether the device and head dimension take the fused attention (-1: not asked yet)
  // --compute-dtype tf32x3: the linears' weights split into TF32 parts once per held block, rows
  // [small | big], and the scratch of a GEMM's activation split as [big | small] (tf32x3.cuh).
  Grow<float> qkv2, o2, gate_up2, down2, x2;
  struct Rope {
    Grow<float> cos, sin;
    int half = 0;
  };
  std::map<int, Rope> ropes;
  Head heads[2];
  // Scratch.
  Grow<float> x, xn, qkvs, attn, gu, act, branch, hx, logits, logits_ref, scores;
  Grow<int32_t> positions, prefix_end, branch_begin, targets;
  Grow<int> flag;
  Grow<float> kept;
  Grow<double> entropy, nll, nll_ref, kl;
  Grow<uint8_t> top1;
  std::vector<float> tap_host;
  std::vector<double> entropy_host;

  void bind() const { CUDA_CHECK(cudaSetDevice(ordinal)); }
  // `put` for the large arrays: through the pinned double buffer (staged_copy.cuh).
  template <typename T>
  T* put_big(Grow<T>& g, const T* host, std::size_t n, const char* what) {
    if (!host || n == 0) return nullptr;
    T* d = g.get(n, what);
    staged.to_device(d, host, n * sizeof(T), stream);
    return d;
  }
  bool bf16() const { return dims.bf16_gemm; }  // --compute-dtype bf16 (gemm_mode.cuh)
  bool tf32x3() const { return dims.tf32x3_gemm; }  // --compute-dtype tf32x3 (tf32x3.cuh)

  // y[M,N] = x[M,K] · w[N,K]ᵀ + beta · y (row-major, ld of y = ldy): gemm_plan.h's linear forward
  // (column-major yᵀ = w · xᵀ) with the output's beta and stride. With --compute-dtype bf16 and
  // the weight's bf16 copy w16: x rounded to bf16 once, a bf16 × bf16 GEMM (bf16_operands.cuh);
  // with --compute-dtype tf32x3 and the weight's split copy w2: x split once, two TF32 GEMMs.
  void gemm_xwt(const float* xd, const float* w, float* y, int64_t M, int N, int K, float beta, int64_t ldy,
                const __nv_bfloat16* w16 = nullptr, const float* w2 = nullptr) {
    constexpr int64_t kSlice = int64_t(1) << 30;  // cuBLAS's int dimensions: slices of 2^30 rows
    if (tf32x3() && w2) {
      float* xs = x2.get(static_cast<std::size_t>(M) * 2 * K, "a GEMM's input split into TF32 parts");
      detail::launch_split_tf32(xd, xs, M, K, /*big_first=*/true, stream);
      for (int64_t m0 = 0; m0 < M; m0 += kSlice)
        detail::gemm_xwt_tf32x3(blas, xs + m0 * 2 * K, w2, y + m0 * ldy, static_cast<int>(std::min(kSlice, M - m0)), N,
                                K, beta, static_cast<int>(ldy));
      return;
    }
    __nv_bfloat16* xr = nullptr;
    if (bf16() && w16) {
      xr = x16.get(static_cast<std::size_t>(M) * K, "a GEMM's input rounded to bf16");
      detail::launch_round_bf16(xd, xr, static_cast<std::size_t>(M) * K, stream);
    }
    for (int64_t m0 = 0; m0 < M; m0 += kSlice) {
      GemmCall g = linear_forward_call(static_cast<int>(M - m0 < kSlice ? M - m0 : kSlice), K, N);
      g.beta = beta, g.ldc = static_cast<int>(ldy), g.b_off = m0 * K, g.c_off = m0 * ldy;
      if (xr)
        detail::gemm_bf16(blas, g, w16, xr, y);
      else
        detail::issue(blas, bf16(), g, {const_cast<float*>(xd), const_cast<float*>(w), y});
    }
  }
  // The bf16 copy of a resident weight array of n elements (--compute-dtype bf16), else nullptr.
  __nv_bfloat16* round_weights(const Grow<float>& w, Grow<__nv_bfloat16>& w16, std::size_t n, const char* what) {
    if (!bf16() || !w.data() || n == 0) return nullptr;
    __nv_bfloat16* d = w16.get(n, what);
    detail::launch_round_bf16(w.data(), d, n, stream);
    return d;
  }

  // Causal attention of unpacked sequences through cuBLAS: per sequence, per member m of the GQA
  // groups and per chunk of Tq queries, scores of the n_kv heads h = g·group + m (g = 0..n_kv−1:
  // constant strides group·d in q and out, d in k and v) in one strided-batched GEMM, the causal
  // softmax, and P·V in a second. Keys [0, q0 + Tq) (the masked ones get probability 0). The two
  // GEMMs are qsweep/cuda/gemm_plan.h's calls, checked on the CPU by tests/test_gemm_plan.cc.
  void attention_gemm(const float* qkv, float* out, int n_seq, int T, double* ent) {
    const BlockDims& d = dims;
    const int hd = d.head_dim, group = d.n_heads / d.n_kv_heads, nkv = d.n_kv_heads;
    // One chunk of all T queries while its scores fit in kScoreBytes. Causal chunks of 512 queries
    // (keys ending at each chunk's last query: 5/8 of the square's GEMM work at T = 2048) measured
    // slower on an H200 (1b preset fp32: 1.54 s against 1.41 s; bf16 0.58 against 0.60): more,
    // smaller GEMMs and softmax launches cost what the masked triangle saved.
    constexpr int64_t kScoreBytes = int64_t(256) << 20;  // the scores of one chunk, all its heads
    int Tq = T;
    if (static_cast<int64_t>(nkv) * T * T * 4 > kScoreBytes)
      Tq = static_cast<int>(std::max<int64_t>(64, kScoreBytes / (int64_t(nkv) * T * 4) / 64 * 64));
    float* S = scores.get(static_cast<std::size_t>(nkv) * Tq * T, "attention scores");
    // --compute-dtype bf16: Q, K, V rounded to bf16 once, P by the softmax, bf16 × bf16 GEMMs.
    __nv_bfloat16 *qkv16r = nullptr, *P16 = nullptr;
    if (bf16()) {
      const std::size_t nq = static_cast<std::size_t>(n_seq) * T * (d.n_heads + 2 * nkv) * hd;
      qkv16r = qkv_act16.get(nq, "q/k/v rounded to bf16");
      detail::launch_round_bf16(qkv, qkv16r, nq, stream);
      P16 = probs16.get(static_cast<std::size_t>(nkv) * Tq * T, "attention probabilities in bf16");
    }
    const float scale = 1.0f / sqrtf(static_cast<float>(hd));
    const AttnShape a{n_seq, T, d.n_heads, nkv, hd};
    float* ops[kOperands] = {};
    ops[static_cast<int>(Operand::Qkv)] = const_cast<float*>(qkv), ops[static_cast<int>(Operand::Out)] = out;
    ops[static_cast<int>(Operand::DS)] = S;
    for (int sq = 0; sq < n_seq; ++sq)
      for (int m = 0; m < group; ++m)
        for (int q0 = 0; q0 < T; q0 += Tq) {
          const int tq = std::min(Tq, T - q0), kn = q0 + tq;
          // S_g [tq, kn] = scale·Q_h·K_gᵀ for the chunk's queries, the kv heads g batched (gemm_plan.h).
          const GemmCall sc = scores_call(a, sq, m, scale, q0, tq, Operand::DS, 0);
          if (qkv16r)
            detail::gemm_bf16(blas, sc, qkv16r, qkv16r, S);
          else
            detail::issue(blas, false, sc, ops);
          double* e = ent ? ent + (static_cast<int64_t>(sq) * d.n_heads + m) * T : nullptr;
          detail::launch_causal_softmax(S, nkv, tq, kn, q0, d.sliding_window, e, static_cast<int64_t>(group) * T, stream,
                                        P16);
          // O_h [tq, hd] = P_g [tq, kn]·V_g [kn, hd].
          const GemmCall pv = pv_call(a, sq, m, q0, tq, Operand::DS, 0);
          if (qkv16r)
            detail::gemm_bf16(blas, pv, qkv16r, P16, out);
          else
            detail::issue(blas, false, pv, ops);
        }
  }

  // Whether this call's attention takes the fused kernel (BlockDims::flash_attention): bf16 and
  // tf32x3 only (fp32 stays SGEMM), unpacked sequences without entropy, a head dimension and
  // device the kernel takes.
  bool flash(const double* ent) {
    if (!(bf16() || tf32x3()) || !dims.flash_attention || ent) return false;
    if (flash_ok < 0) flash_ok = detail::flash_attention_supports(dims.head_dim, tf32x3()) ? 1 : 0;
    return flash_ok == 1;
  }

  // The fused attention: bf16 on Q, K, V rounded to bf16 once (as attention_gemm's), tf32x3 on the
  // fp32 activations.
  void attention_flash(const float* qkv, float* out, int n_seq, int T) {
    const BlockDims& d = dims;
    const int hd = d.head_dim, Q = d.n_heads * hd, KV = d.n_kv_heads * hd;
    if (tf32x3()) {
      detail::flash_attention_tf32x3(qkv, qkv + Q, qkv + Q + KV, Q + 2 * KV, out, Q, n_seq, T, d.n_heads, d.n_kv_heads,
                                     hd, d.sliding_window, stream);
      return;
    }
    const std::size_t nq = static_cast<std::size_t>(n_seq) * T * (Q + 2 * KV);
    __nv_bfloat16* q16 = qkv_act16.get(nq, "q/k/v rounded to bf16");
    detail::launch_round_bf16(qkv, q16, nq, stream);
    detail::flash_attention_bf16(q16, q16 + Q, q16 + Q + KV, Q + 2 * KV, out, Q, n_seq, T, d.n_heads, d.n_kv_heads, hd,
                                 d.sliding_window, stream);
  }

  // The split copy of a resident weight array [rows, cols] (--compute-dtype tf32x3), else nullptr.
  float* split_weights(const Grow<float>& w, Grow<float>& w2, std::size_t rows, int cols, const char* what) {
    if (!tf32x3() || !w.data() || rows == 0) return nullptr;
    float* d = w2.get(rows * 2 * static_cast<std::size_t>(cols), what);
    detail::launch_split_tf32(w.data(), d, static_cast<int64_t>(rows), cols, /*big_first=*/false, stream);
    return d;
  }

  // The head's logits of n host rows of final hidden states, in the device array `out` [n, vocab].
  float* logits_of(const Head& h, const float* x, int64_t n, Grow<float>& out) {
    const int H = dims.hidden;
    float* hxd = put_big(hx, x, static_cast<std::size_t>(n) * H, "the head's input rows");
    detail::launch_rmsnorm(hxd, h.norm.data(), hxd, n, H, dims.eps, stream);
    if (h.divisor != 1.0f) detail::launch_divide(hxd, h.divisor, n * H, stream);
    float* lg = out.get(static_cast<std::size_t>(n) * h.vocab, "logits");
    gemm_xwt(hxd, h.lm_head.data(), lg, n, h.vocab, H, 0.0f, h.vocab, bf16() ? h.lm_head16.data() : nullptr,
             tf32x3() ? h.lm_head2.data() : nullptr);
    return lg;
  }

  void tap(const TapFn* fn, Tap which, const float* d, int64_t rows, int cols) {
    if (!fn || !*fn) return;
    CUDA_CHECK(cudaStreamSynchronize(stream));  // d is complete for work on other streams
    bool copied = false;
    const HostCopy host = [&]() -> const float* {
      if (!copied) {
        tap_host.resize(static_cast<std::size_t>(rows) * cols);
        CUDA_CHECK(cudaMemcpyAsync(tap_host.data(), d, tap_host.size() * sizeof(float), cudaMemcpyDeviceToHost, stream));
        CUDA_CHECK(cudaStreamSynchronize(stream));
        copied = true;
      }
      return tap_host.data();
    };
    (*fn)(which, d, rows, cols, host);
  }
};

BlockForward::BlockForward(const BlockDims& dims, int ordinal) : impl_(new Impl) {
  impl_->dims = dims;
  impl_->ordinal = ordinal;
  impl_->bind();
  CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&impl_->blas));
  CUBLAS_CHECK(cublasSetStream(impl_->blas, impl_->stream));
  CUBLAS_CHECK(cublasSetMathMode(impl_->blas, CUBLAS_DEFAULT_MATH));  // FP32, no TF32
}

BlockForward::~BlockForward() {
  if (impl_->blas) cublasDestroy(impl_->blas);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

void BlockForward::upload_block(const BlockWeightsView& w) {
  Impl& m = *impl_;
  m.bind();
  const auto t0 = std::chrono::steady_clock::now();
  const BlockDims& d = m.dims;
  const std::size_t H = d.hidden, Q = static_cast<std::size_t>(d.n_heads) * d.head_dim,
                    KV = static_cast<std::size_t>(d.n_kv_heads) * d.head_dim, I = d.inter, QKV = Q + 2 * KV;
  cudaStream_t s = m.stream;
  put(m.input_norm, w.input_norm, H, "input_norm", s);
  put(m.post_norm, w.post_norm, H, "post_attention_norm", s);
  m.has_qk_norm = w.q_norm != nullptr;
  put(m.q_norm, w.q_norm, d.head_dim, "q_norm", s);
  put(m.k_norm, w.k_norm, d.head_dim, "k_norm", s);
  m.put_big(m.qkv, w.qkv, QKV * H, "the block's q/k/v weights");
  m.has_qkv_bias = w.qkv_bias != nullptr;
  put(m.qkv_bias, w.qkv_bias, QKV, "q/k/v bias", s);
  m.put_big(m.o, w.o, H * Q, "the block's o_proj weights");
  m.has_o_bias = w.o_bias != nullptr;
  put(m.o_bias, w.o_bias, H, "o_proj bias", s);
  m.put_big(m.gate_up, w.gate_up, 2 * I * H, "the block's gate/up weights");
  m.has_gu_bias = w.gate_up_bias != nullptr;
  put(m.gate_up_bias, w.gate_up_bias, 2 * I, "gate/up bias", s);
  m.put_big(m.down, w.down, H * I, "the block's down_proj weights");
  m.has_down_bias = w.down_bias != nullptr;
  put(m.down_bias, w.down_bias, H, "down_proj bias", s);
  m.round_weights(m.qkv, m.qkv16, QKV * H, "the block's q/k/v weights in bf16");
  m.round_weights(m.o, m.o16, H * Q, "the block's o_proj weights in bf16");
  m.round_weights(m.gate_up, m.gate_up16, 2 * I * H, "the block's gate/up weights in bf16");
  m.round_weights(m.down, m.down16, H * I, "the block's down_proj weights in bf16");
  m.split_weights(m.qkv, m.qkv2, QKV, static_cast<int>(H), "the block's q/k/v weights split into TF32 parts");
  m.split_weights(m.o, m.o2, H, static_cast<int>(Q), "the block's o_proj weights split into TF32 parts");
  m.split_weights(m.gate_up, m.gate_up2, 2 * I, static_cast<int>(H), "the block's gate/up weights split into TF32 parts");
  m.split_weights(m.down, m.down2, H, static_cast<int>(I), "the block's down_proj weights split into TF32 parts");
  CUDA_CHECK(cudaStreamSynchronize(s));  // the host arrays may change after this returns
  m.prof.add(kUpload, since(t0));
  m.block_loaded = true;
}

void BlockForward::set_rope(int seq_len, int half, const float* cos, const float* sin) {
  Impl& m = *impl_;
  m.bind();
  Impl::Rope& r = m.ropes[seq_len];
  r.half = half;
  put(r.cos, cos, static_cast<std::size_t>(seq_len) * half, "RoPE table", m.stream);
  put(r.sin, sin, static_cast<std::size_t>(seq_len) * half, "RoPE table", m.stream);
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void BlockForward::run(float* x, int n_seq, int seq_len, const RowPacking* packing, const TapFn* tap,
                       double* entropy) {
  Impl& m = *impl_;
  m.bind();
  const std::size_t n = static_cast<std::size_t>(n_seq) * seq_len * m.dims.hidden;
  float* xd = m.put_big(m.x, x, n, "the batch's hidden states");
  run_device(xd, n_seq, seq_len, packing, tap, entropy);
  m.staged.to_host(x, xd, n * sizeof(float), m.stream);
  CUDA_CHECK(cudaStreamSynchronize(m.stream));  // also surfaces asynchronous kernel errors
}

void BlockForward::run_device(float* xd, int n_seq, int seq_len, const RowPacking* packing, const TapFn* tap,
                              double* entropy) {
  Impl& m = *impl_;
  if (!m.block_loaded) throw std::logic_error("BlockForward::run before upload_block");
  auto rope_it = m.ropes.find(seq_len);
  if (rope_it == m.ropes.end()) throw std::logic_error("BlockForward::run: no RoPE table for this seq_len");
  m.bind();
  const BlockDims& d = m.dims;
  cudaStream_t s = m.stream;
  const int64_t M = static_cast<int64_t>(n_seq) * seq_len;
  const int H = d.hidden, Q = d.n_heads * d.head_dim, KV = d.n_kv_heads * d.head_dim, I = d.inter;
  const int QKV = Q + 2 * KV;
  const std::size_t um = static_cast<std::size_t>(M);
  float* xn = m.xn.get(um * H, "normed hidden states");
  float* qkv = m.qkvs.get(um * QKV, "q/k/v activations");
  float* attn = m.attn.get(um * Q, "attention output");
  float* gu = m.gu.get(um * 2 * I, "gate/up activations");
  float* act = m.act.get(um * I, "SwiGLU activations");
  float* branch = d.residual_scaled ? m.branch.get(um * H, "residual branch") : nullptr;
  const int32_t* pos = nullptr;
  const int32_t *pe = nullptr, *bb = nullptr;
  if (packing) {
    pos = put(m.positions, packing->positions, um, "positions", s);
    pe = put(m.prefix_end, packing->prefix_end, um, "packing", s);
    bb = put(m.branch_begin, packing->branch_begin, um, "packing", s);
  }
  double* ent = entropy ? m.entropy.get(um * d.n_heads, "attention entropy") : nullptr;

  // Attention half.
  m.prof.mark(kCopies, s);
  detail::launch_rmsnorm(xd, m.input_norm.data(), xn, M, H, d.eps, s);
  m.prof.mark(kNorm, s);
  m.tap(tap, Tap::QKV, xn, M, H);
  m.gemm_xwt(xn, m.qkv.data(), qkv, M, QKV, H, 0.0f, QKV, m.qkv16.data(), m.qkv2.data());
  m.prof.mark(kQkv, s);
  if (m.has_qkv_bias) detail::launch_add_bias(qkv, m.qkv_bias.data(), M, QKV, QKV, s);
  if (m.has_qk_norm) {
    detail::launch_head_rmsnorm(qkv, QKV, M, d.n_heads, d.head_dim, m.q_norm.data(), d.eps, s);
    detail::launch_head_rmsnorm(qkv + Q, QKV, M, d.n_kv_heads, d.head_dim, m.k_norm.data(), d.eps, s);
  }
  const Impl::Rope& rt = rope_it->second;
  detail::launch_rope(qkv, QKV, M, seq_len, d.n_heads, rt.half, rt.cos.data(), rt.sin.data(), pos, s);
  detail::launch_rope(qkv + Q, QKV, M, seq_len, d.n_kv_heads, rt.half, rt.cos.data(), rt.sin.data(), pos, s);
  m.prof.mark(kRope, s);
  if (packing)
    detail::launch_attention(qkv, qkv + Q, qkv + Q + KV, QKV, attn, n_seq, seq_len, d.n_heads, d.n_kv_heads,
                             d.head_dim, d.sliding_window, pe, bb, ent, s);
  else if (m.flash(ent))
    m.attention_flash(qkv, attn, n_seq, seq_len);
  else
    m.attention_gemm(qkv, attn, n_seq, seq_len, ent);
  m.prof.mark(kAttention, s);
  if (entropy) {  // per query row on the device; summed here in query order per (sequence, head)
    m.entropy_host.resize(um * d.n_heads);
    CUDA_CHECK(cudaMemcpyAsync(m.entropy_host.data(), ent, m.entropy_host.size() * sizeof(double),
                               cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    for (int64_t t = 0; t < static_cast<int64_t>(n_seq) * d.n_heads; ++t) {
      double sum = 0;
      for (int i = 0; i < seq_len; ++i) sum += m.entropy_host[static_cast<std::size_t>(t) * seq_len + i];
      entropy[t] = sum;
    }
  }
  // x += in · wᵀ (+ bias): through beta = 1, or (MiniCPM) as a branch added × residual_scale.
  auto residual = [&](const float* in, const float* w, const __nv_bfloat16* w16, const float* w2, const float* bias,
                      int K) {
    float* y = d.residual_scaled ? branch : xd;
    m.gemm_xwt(in, w, y, M, H, K, d.residual_scaled ? 0.0f : 1.0f, H, w16, w2);
    if (bias) detail::launch_add_bias(y, bias, M, H, H, s);
    if (d.residual_scaled) detail::launch_add_scaled(xd, branch, d.residual_scale, M * H, s);
  };
  m.tap(tap, Tap::O, attn, M, Q);
  m.prof.mark(kCopies, s);
  residual(attn, m.o.data(), m.o16.data(), m.o2.data(), m.has_o_bias ? m.o_bias.data() : nullptr, Q);
  m.prof.mark(kO, s);

  // MLP half.
  detail::launch_rmsnorm(xd, m.post_norm.data(), xn, M, H, d.eps, s);
  m.prof.mark(kNorm, s);
  m.tap(tap, Tap::GateUp, xn, M, H);
  m.gemm_xwt(xn, m.gate_up.data(), gu, M, 2 * I, H, 0.0f, 2 * I, m.gate_up16.data(), m.gate_up2.data());
  if (m.has_gu_bias) detail::launch_add_bias(gu, m.gate_up_bias.data(), M, 2 * I, 2 * I, s);
  m.prof.mark(kGateUp, s);
  detail::launch_silu_mul_rows(gu, act, M, I, s);
  m.prof.mark(kSilu, s);
  m.tap(tap, Tap::Down, act, M, I);
  residual(act, m.down.data(), m.down16.data(), m.down2.data(), m.has_down_bias ? m.down_bias.data() : nullptr, I);
  m.prof.mark(kDown, s);
  CUDA_CHECK(cudaStreamSynchronize(s));  // also surfaces asynchronous kernel errors
  m.prof.collect();
}

float* BlockForward::region_create(const float* host, std::size_t n) {
  Impl& m = *impl_;
  m.bind();
  auto* d = static_cast<float*>(detail::device_alloc(n * sizeof(float), "the resident hidden states",
                                                     "lower --activation-budget-mb: it is applied per device"));
  try {
    m.staged.to_device(d, host, n * sizeof(float), m.stream);
  } catch (...) {
    cudaFree(d);
    throw;
  }
  return d;
}

void BlockForward::region_download(float* host, const float* device, std::size_t n) {
  Impl& m = *impl_;
  m.bind();
  m.staged.to_host(host, device, n * sizeof(float), m.stream);
}

void BlockForward::region_free(float* device) {
  if (device) cudaFree(device);
}

float* BlockForward::keep_copy(const float* device, std::size_t n) {
  Impl& m = *impl_;
  float* k = m.kept.get(n, "the block input kept for the non-finite guard");
  CUDA_CHECK(cudaMemcpyAsync(k, device, n * sizeof(float), cudaMemcpyDeviceToDevice, m.stream));
  return k;
}

void BlockForward::copy(float* dst, const float* src, std::size_t n) {
  Impl& m = *impl_;
  m.bind();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDefault, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

bool BlockForward::all_finite(const float* device, std::size_t n) {
  Impl& m = *impl_;
  int* flag = m.flag.get(1, "a flag");
  CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), m.stream));
  detail::launch_flag_non_finite(device, n, flag, m.stream);
  int h = 0;
  CUDA_CHECK(cudaMemcpyAsync(&h, flag, sizeof(int), cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  return h == 0;
}

void BlockForward::upload_head(int slot, const float* norm, const float* lm_head, int vocab, float divisor) {
  Impl& m = *impl_;
  m.bind();
  const auto t0 = std::chrono::steady_clock::now();
  Head& h = m.heads[slot & 1];
  h.vocab = vocab;
  h.divisor = divisor;
  put(h.norm, norm, static_cast<std::size_t>(m.dims.hidden), "final norm", m.stream);
  m.put_big(h.lm_head, lm_head, static_cast<std::size_t>(vocab) * m.dims.hidden, "lm_head weights");
  m.round_weights(h.lm_head, h.lm_head16, static_cast<std::size_t>(vocab) * m.dims.hidden, "lm_head weights in bf16");
  m.split_weights(h.lm_head, h.lm_head2, static_cast<std::size_t>(vocab), m.dims.hidden,
                  "lm_head weights split into TF32 parts");
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.prof.add(kUpload, since(t0));
}


void BlockForward::head_logits(int slot, const float* x, int64_t n, float* logits) {
  Impl& m = *impl_;
  m.bind();
  const Head& h = m.heads[slot & 1];
  if (n <= 0) return;
  float* lg = m.logits_of(h, x, n, m.logits);
  CUDA_CHECK(cudaMemcpyAsync(logits, lg, static_cast<std::size_t>(n) * h.vocab * sizeof(float),
                             cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void BlockForward::head_nll(int slot, const float* x, int64_t n, const int32_t* targets, double* nll) {
  Impl& m = *impl_;
  m.bind();
  const Head& h = m.heads[slot & 1];
  if (n <= 0) return;
  const auto t0 = std::chrono::steady_clock::now();
  float* lg = m.logits_of(h, x, n, m.logits);
  const int32_t* tg = put(m.targets, targets, static_cast<std::size_t>(n), "targets", m.stream);
  double* nd = m.nll.get(static_cast<std::size_t>(n), "NLL");
  detail::launch_rows_nll(lg, n, h.vocab, tg, nd, m.stream);
  CUDA_CHECK(cudaMemcpyAsync(nll, nd, static_cast<std::size_t>(n) * sizeof(double), cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.prof.add(kHead, since(t0));
}

void BlockForward::head_kl(int slot, const float* x, int slot_ref, const float* x_ref, int64_t n,
                           const int32_t* targets, double* kl, uint8_t* top1, double* nll, double* nll_base) {
  Impl& m = *impl_;
  m.bind();
  const Head &h = m.heads[slot & 1], &hr = m.heads[slot_ref & 1];
  if (n <= 0) return;
  if (h.vocab != hr.vocab) throw std::invalid_argument("head_kl: the two heads' vocabularies differ");
  float* lg = m.logits_of(h, x, n, m.logits);
  float* lr = m.logits_of(hr, x_ref, n, m.logits_ref);
  const std::size_t nn = static_cast<std::size_t>(n);
  const int32_t* tg = put(m.targets, targets, nn, "targets", m.stream);
  double* nd = m.nll.get(nn, "NLL");
  double* nr = m.nll_ref.get(nn, "NLL");
  double* kd = m.kl.get(nn, "KL");
  uint8_t* td = m.top1.get(nn, "top-1 agreement");
  detail::launch_rows_nll(lg, n, h.vocab, tg, nd, m.stream);
  detail::launch_rows_nll(lr, n, h.vocab, tg, nr, m.stream);
  detail::launch_rows_kl(lr, lg, n, h.vocab, kd, td, m.stream);
  CUDA_CHECK(cudaMemcpyAsync(nll, nd, nn * sizeof(double), cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaMemcpyAsync(nll_base, nr, nn * sizeof(double), cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaMemcpyAsync(kl, kd, nn * sizeof(double), cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaMemcpyAsync(top1, td, nn, cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

}  // namespace qsweep::cuda
