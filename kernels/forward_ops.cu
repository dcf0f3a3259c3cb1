// forward_ops.cu — the forward pass's non-GEMM kernels (forward_ops.cuh): per-head RMSNorm,
// RoPE, causal GQA attention, SwiGLU, bias, scaled residual, head NLL. Each mirrors the CPU op
// of the same name in model/cpu_ops.cc / rope.cc; the tests compare them (test_cuda_forward.cc).
//
// Attention, two ways. Unpacked sequences (eval, calibration): block_forward.cu computes the scores
// of a chunk of queries for all heads of a GQA group member with one cuBLAS strided-batched GEMM,
// causal_softmax_kernel normalises them (window, entropy), a second GEMM applies them to V.
// Packed sequences (task scoring): attention_kernel, one thread block per (sequence, head, query
// row), the visible keys' scores in shared memory (seq_len floats: up to 12k tokens in the default
// 48 KB, more after raising the kernel's limit), block reductions for max and sum. Both are exact
// to fp32 rounding; neither is a tiled flash kernel (what is left for speed: README, issue 12).
#include "check.cuh"
#include "forward_ops.cuh"
#include "reduce.cuh"

#include <cfloat>
#include <climits>
#include <stdexcept>
#include <string>

namespace qsweep::cuda::detail {
namespace {

constexpr int kThreads = 256;

__device__ int block_min_int(int v, int* red) {
  for (int o = 16; o > 0; o /= 2) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : INT_MAX;
  for (int o = 16; o > 0; o /= 2) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 1048576) b = 1048576;  // grid-stride loops cover the rest
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

__global__ void head_rmsnorm_kernel(float* x, int64_t ld, int64_t tasks, int n_heads, int head_dim, const float* w,
                                    float eps) {
  // One warp per (row, head).
  const int64_t t = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (t >= tasks) return;
  const int lane = threadIdx.x % 32;
  float* xh = x + (t / n_heads) * ld + (t % n_heads) * static_cast<int64_t>(head_dim);
  float ss = 0.0f;
  for (int c = lane; c < head_dim; c += 32) ss += xh[c] * xh[c];
  ss = warp_sum(ss);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(head_dim) + eps);
  for (int c = lane; c < head_dim; c += 32) xh[c] = (xh[c] * inv) * w[c];
}

__global__ void rope_kernel(float* x, int64_t ld, int64_t rows, int seq_len, int n_heads, int half,
                            const float* cosv, const float* sinv, const int32_t* positions) {
  const int64_t per_row = static_cast<int64_t>(n_heads) * half;
  const int64_t n = rows * per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / per_row;
    const int64_t k = i % per_row;
    const int h = static_cast<int>(k / half), j = static_cast<int>(k % half);
    const int p = positions ? positions[r] : static_cast<int>(r % seq_len);
    const float c = cosv[static_cast<int64_t>(p) * half + j], s = sinv[static_cast<int64_t>(p) * half + j];
    float* x1 = x + r * ld + static_cast<int64_t>(h) * 2 * half;
    const float a = x1[j], b = x1[j + half];
    x1[j] = a * c - b * s;
    x1[j + half] = b * c + a * s;
  }
}

__global__ void attention_kernel(const float* q, const float* k, const float* v, int64_t ld, float* out, int seq_len,
                                 int n_heads, int group, int d, int window, const int32_t* prefix_end,
                                 const int32_t* branch_begin, float scale, double* entropy) {
  extern __shared__ double smem_d[];  // declared double: 8-byte aligned for redd
  float* smem = reinterpret_cast<float*>(smem_d);
  float* scores = smem;              // [seq_len]
  float* qv = smem + seq_len;        // [d]
  float* red = qv + d;               // [32] floats
  int off = seq_len + d + 32;
  off += off & 1;
  double* redd = reinterpret_cast<double*>(smem + off);  // [32] doubles, 8-byte aligned
  const int sh = blockIdx.x;
  const int seq = sh / n_heads, h = sh % n_heads, kvh = h / group;
  const int qpos = blockIdx.y;
  const int64_t row0 = static_cast<int64_t>(seq) * seq_len;
  const int64_t r = row0 + qpos;
  const int lo = window > 0 ? max(0, qpos - window + 1) : 0;
  const int pe = prefix_end ? prefix_end[r] : 0, bb = prefix_end ? branch_begin[r] : 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) qv[c] = q[r * ld + static_cast<int64_t>(h) * d + c];
  __syncthreads();
  const float* kh = k + row0 * ld + static_cast<int64_t>(kvh) * d;
  const float* vh = v + row0 * ld + static_cast<int64_t>(kvh) * d;
  float mx = -FLT_MAX;
  for (int j = lo + threadIdx.x; j <= qpos; j += blockDim.x) {
    const bool visible = !prefix_end || j < pe || j >= bb;
    float s = -FLT_MAX;
    if (visible) {
      const float* kj = kh + static_cast<int64_t>(j) * ld;
      float acc = 0.0f;
      for (int c = 0; c < d; ++c) acc += qv[c] * kj[c];
      s = acc * scale;
      mx = fmaxf(mx, s);
    }
    scores[j] = s;
  }
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int j = lo + threadIdx.x; j <= qpos; j += blockDim.x) {
    const bool visible = !prefix_end || j < pe || j >= bb;
    const float e = visible ? expf(scores[j] - mx) : 0.0f;  // full-precision exp (the CPU's is within 2e-7)
    scores[j] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  const float inv = 1.0f / sum;
  if (entropy) {
    double e = 0;
    for (int j = lo + threadIdx.x; j <= qpos; j += blockDim.x) {
      const double p = static_cast<double>(scores[j] * inv);
      if (p > 0) e -= p * log(p);
    }
    e = block_sum(e, redd);
    if (threadIdx.x == 0) entropy[static_cast<int64_t>(sh) * seq_len + qpos] = e;
  }
  __syncthreads();
  float* orow = out + r * (static_cast<int64_t>(n_heads) * d) + static_cast<int64_t>(h) * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = lo; j <= qpos; ++j) acc += scores[j] * vh[static_cast<int64_t>(j) * ld + c];
    orow[c] = acc * inv;
  }
}

__global__ void causal_softmax_kernel(float* scores, int Tq, int kn, int q0, int window, double* entropy,
                                      int64_t ent_stride, __nv_bfloat16* p16) {
  __shared__ float red[32];
  __shared__ double redd[32];
  const int b = blockIdx.x / Tq, i = blockIdx.x % Tq, qpos = q0 + i;
  float* row = scores + static_cast<int64_t>(blockIdx.x) * kn;
  const int lo = window > 0 ? max(0, qpos - window + 1) : 0, hi = min(qpos + 1, kn);  // visible [lo, hi)
  float mx = -FLT_MAX;
  for (int j = lo + threadIdx.x; j < hi; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int j = lo + threadIdx.x; j < hi; j += blockDim.x) {
    const float e = expf(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  const float inv = 1.0f / sum;
  double ent = 0;
  __nv_bfloat16* row16 = p16 ? p16 + static_cast<int64_t>(blockIdx.x) * kn : nullptr;
  for (int j = threadIdx.x; j < kn; j += blockDim.x) {
    if (j < lo || j >= hi) {
      if (row16)
        row16[j] = __float2bfloat16_rn(0.0f);
      else
        row[j] = 0.0f;
      continue;
    }
    const float p = row[j] * inv;
    if (row16)  // --compute-dtype bf16: P rounded once for the bf16 P·V GEMM; S keeps the exponentials
      row16[j] = __float2bfloat16_rn(p);
    else
      row[j] = p;
    if (entropy && p > 0) ent -= static_cast<double>(p) * log(static_cast<double>(p));
  }
  if (entropy) {
    ent = block_sum(ent, redd);
    if (threadIdx.x == 0) entropy[b * ent_stride + qpos] = ent;
  }
}

// The same softmax with the row's visible scores held in registers (K per thread: rows of up to
// K·blockDim keys): one read of the visible scores and one write of the row instead of three reads
// and two writes, and the masked keys are never read. Each thread takes the same keys in the same
// order as causal_softmax_kernel and the reductions are the same, so the probabilities are the
// same bits; the entropy's fp64 sum runs in the same order too when no sliding window starts the
// visible keys after 0.
template <int K>
__global__ void __launch_bounds__(kThreads) causal_softmax_reg_kernel(float* scores, int Tq, int kn, int q0, int window,
                                                                      double* entropy, int64_t ent_stride,
                                                                      __nv_bfloat16* p16) {
  __shared__ float red[32];
  __shared__ double redd[32];
  const int b = blockIdx.x / Tq, i = blockIdx.x % Tq, qpos = q0 + i;
  float* row = scores + static_cast<int64_t>(blockIdx.x) * kn;
  __nv_bfloat16* row16 = p16 ? p16 + static_cast<int64_t>(blockIdx.x) * kn : nullptr;
  const int lo = window > 0 ? max(0, qpos - window + 1) : 0, hi = min(qpos + 1, kn);  // visible [lo, hi)
  float v[K];
  float mx = -FLT_MAX;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int j = lo + threadIdx.x + k * blockDim.x;
    v[k] = j < hi ? row[j] : -FLT_MAX;
    if (j < hi) mx = fmaxf(mx, v[k]);
  }
  mx = block_max(mx, red);
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int j = lo + threadIdx.x + k * blockDim.x;
    if (j < hi) {
      v[k] = expf(v[k] - mx);
      sum += v[k];
    }
  }
  sum = block_sum(sum, red);
  const float inv = 1.0f / sum;
  double ent = 0;
  // Masked keys before the window.
  for (int j = threadIdx.x; j < lo; j += blockDim.x) {
    if (row16)
      row16[j] = __float2bfloat16_rn(0.0f);
    else
      row[j] = 0.0f;
  }
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int j = lo + threadIdx.x + k * blockDim.x;
    if (j < hi) {
      const float p = v[k] * inv;
      if (row16)
        row16[j] = __float2bfloat16_rn(p);
      else
        row[j] = p;
      if (entropy && p > 0) ent -= static_cast<double>(p) * log(static_cast<double>(p));
    }
  }
  for (int j = hi + threadIdx.x; j < kn; j += blockDim.x) {  // the future keys
    if (row16)
      row16[j] = __float2bfloat16_rn(0.0f);
    else
      row[j] = 0.0f;
  }
  if (entropy) {
    ent = block_sum(ent, redd);
    if (threadIdx.x == 0) entropy[b * ent_stride + qpos] = ent;
  }
}

__global__ void silu_mul_rows_kernel(const float* gu, float* act, int64_t rows, int inter) {
  const int64_t n = rows * inter;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter, c = i % inter;
    const float g = gu[r * 2 * inter + c], u = gu[r * 2 * inter + inter + c];
    act[i] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t rows, int cols, int64_t ld) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[(i / cols) * ld + i % cols] += b[i % cols];
}

__global__ void add_scaled_kernel(float* x, const float* y, float a, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i] * a;
}

__global__ void divide_kernel(float* x, float d, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] /= d;
}

__global__ void flag_non_finite_kernel(const float* x, std::size_t n, int* flag) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    if (!isfinite(x[i])) {
      *flag = 1;  // any writer will do: the value is the same
      return;
    }
}

// model/cpu_ops.cc rows_kl for one row per block: the first argmax of each, both log-partitions with
// the exponentials in double, KL(a ‖ b) = Σ p_a (log p_a − log p_b).
__global__ void rows_kl_kernel(const float* ref_logits, const float* logits, int vocab, double* kl, uint8_t* top1) {
  __shared__ float red[32];
  __shared__ int redi[32];
  __shared__ double redd[32];
  const float* a = ref_logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const float* b = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float ma = -FLT_MAX, mb = -FLT_MAX;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) ma = fmaxf(ma, a[j]), mb = fmaxf(mb, b[j]);
  ma = block_max(ma, red);
  mb = block_max(mb, red);
  int ia = INT_MAX, ib = INT_MAX;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    if (a[j] == ma && j < ia) ia = j;
    if (b[j] == mb && j < ib) ib = j;
  }
  ia = block_min_int(ia, redi);
  ib = block_min_int(ib, redi);
  double sa = 0, sb = 0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    sa += exp(static_cast<double>(a[j]) - ma);
    sb += exp(static_cast<double>(b[j]) - mb);
  }
  sa = block_sum(sa, redd);
  sb = block_sum(sb, redd);
  const double lza = ma + log(sa), lzb = mb + log(sb);
  double k = 0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const double lpa = a[j] - lza, lpb = b[j] - lzb;
    k += exp(lpa) * (lpa - lpb);
  }
  k = block_sum(k, redd);
  if (threadIdx.x == 0) {
    kl[blockIdx.x] = k;
    top1[blockIdx.x] = ia == ib;
  }
}

__global__ void rows_nll_kernel(const float* logits, int vocab, const int32_t* targets, double* nll) {
  __shared__ float red[32];
  __shared__ double redd[32];
  const float* lr = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float mx = -FLT_MAX;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, lr[j]);
  mx = block_max(mx, red);
  double sum = 0.0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) sum += static_cast<double>(expf(lr[j] - mx));
  sum = block_sum(sum, redd);
  if (threadIdx.x == 0)
    nll[blockIdx.x] = static_cast<double>(mx) + log(sum) - static_cast<double>(lr[targets[blockIdx.x]]);
}

}  // namespace

void launch_rows_kl(const float* ref_logits, const float* logits, int64_t n, int vocab, double* kl, uint8_t* top1,
                    cudaStream_t s) {
  for (int64_t r0 = 0; r0 < n; r0 += 65535) {
    const int64_t m = n - r0 < 65535 ? n - r0 : 65535;
    rows_kl_kernel<<<static_cast<unsigned>(m), kThreads, 0, s>>>(ref_logits + r0 * vocab, logits + r0 * vocab, vocab,
                                                                 kl + r0, top1 + r0);
    CUDA_CHECK_LAUNCH();
  }
}

void launch_head_rmsnorm(float* x, int64_t ld, int64_t rows, int n_heads, int head_dim, const float* w, float eps,
                         cudaStream_t s) {
  const int64_t tasks = rows * n_heads;
  if (tasks <= 0) return;
  constexpr int kWarps = 8;
  head_rmsnorm_kernel<<<static_cast<unsigned>((tasks + kWarps - 1) / kWarps), kWarps * 32, 0, s>>>(
      x, ld, tasks, n_heads, head_dim, w, eps);
  CUDA_CHECK_LAUNCH();
}

void launch_rope(float* x, int64_t ld, int64_t rows, int seq_len, int n_heads, int half, const float* cos,
                 const float* sin, const int32_t* positions, cudaStream_t s) {
  const int64_t n = rows * n_heads * half;
  if (n <= 0) return;
  rope_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, ld, rows, seq_len, n_heads, half, cos, sin, positions);
  CUDA_CHECK_LAUNCH();
}

void launch_attention(const float* q, const float* k, const float* v, int64_t ld, float* out, int n_seq, int seq_len,
                      int n_heads, int n_kv_heads, int head_dim, int sliding_window, const int32_t* prefix_end,
                      const int32_t* branch_begin, double* entropy, cudaStream_t s) {
  if (n_seq <= 0 || seq_len <= 0) return;
  if (seq_len > 65535) throw std::runtime_error("CUDA attention: sequences of " + std::to_string(seq_len) +
                                                " tokens exceed the kernel's 65535 (grid y)");
  int even = seq_len + head_dim + 32;
  even += even & 1;
  const std::size_t smem = static_cast<std::size_t>(even) * sizeof(float) + 32 * sizeof(double);
  if (smem > 48 * 1024) {
    int dev = 0, max_optin = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > static_cast<std::size_t>(max_optin))
      throw std::runtime_error("CUDA attention: sequences of " + std::to_string(seq_len) + " tokens need " +
                               std::to_string(smem) + " bytes of shared memory per block, more than the device's " +
                               std::to_string(max_optin) + ": use a shorter --ctx / --seq-len");
    CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  }
  const dim3 grid(static_cast<unsigned>(n_seq) * static_cast<unsigned>(n_heads), static_cast<unsigned>(seq_len));
  attention_kernel<<<grid, 128, smem, s>>>(q, k, v, ld, out, seq_len, n_heads, n_heads / n_kv_heads, head_dim,
                                           sliding_window, prefix_end, branch_begin,
                                           1.0f / sqrtf(static_cast<float>(head_dim)), entropy);
  CUDA_CHECK_LAUNCH();
}

void launch_causal_softmax(float* scores, int batch, int Tq, int kn, int q0, int sliding_window, double* entropy,
                           int64_t ent_stride, cudaStream_t s, __nv_bfloat16* p16) {
  if (batch <= 0 || Tq <= 0) return;
  const unsigned grid = static_cast<unsigned>(batch) * static_cast<unsigned>(Tq);
  // Rows of up to 16·256 keys from registers (causal_softmax_reg_kernel), longer ones in three passes.
  if (kn <= 2 * kThreads)
    causal_softmax_reg_kernel<2><<<grid, kThreads, 0, s>>>(scores, Tq, kn, q0, sliding_window, entropy, ent_stride, p16);
  else if (kn <= 4 * kThreads)
    causal_softmax_reg_kernel<4><<<grid, kThreads, 0, s>>>(scores, Tq, kn, q0, sliding_window, entropy, ent_stride, p16);
  else if (kn <= 8 * kThreads)
    causal_softmax_reg_kernel<8><<<grid, kThreads, 0, s>>>(scores, Tq, kn, q0, sliding_window, entropy, ent_stride, p16);
  else if (kn <= 16 * kThreads)
    causal_softmax_reg_kernel<16><<<grid, kThreads, 0, s>>>(scores, Tq, kn, q0, sliding_window, entropy, ent_stride, p16);
  else
    causal_softmax_kernel<<<grid, kThreads, 0, s>>>(scores, Tq, kn, q0, sliding_window, entropy, ent_stride, p16);
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul_rows(const float* gu, float* act, int64_t rows, int inter, cudaStream_t s) {
  const int64_t n = rows * inter;
  if (n <= 0) return;
  silu_mul_rows_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(gu, act, rows, inter);
  CUDA_CHECK_LAUNCH();
}

void launch_add_bias(float* y, const float* b, int64_t rows, int cols, int64_t ld, cudaStream_t s) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  add_bias_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(y, b, rows, cols, ld);
  CUDA_CHECK_LAUNCH();
}

void launch_add_scaled(float* x, const float* y, float a, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  add_scaled_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, y, a, n);
  CUDA_CHECK_LAUNCH();
}

void launch_divide(float* x, float d, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  divide_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, d, n);
  CUDA_CHECK_LAUNCH();
}

void launch_flag_non_finite(const float* x, std::size_t n, int* flag, cudaStream_t s) {
  if (n == 0) return;
  flag_non_finite_kernel<<<blocks_for(static_cast<int64_t>(n), kThreads), kThreads, 0, s>>>(x, n, flag);
  CUDA_CHECK_LAUNCH();
}

void launch_rows_nll(const float* logits, int64_t n, int vocab, const int32_t* targets, double* nll, cudaStream_t s) {
  for (int64_t r0 = 0; r0 < n; r0 += 65535) {
    const int64_t m = n - r0 < 65535 ? n - r0 : 65535;
    rows_nll_kernel<<<static_cast<unsigned>(m), kThreads, 0, s>>>(logits + r0 * vocab, vocab, targets + r0, nll + r0);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace qsweep::cuda::detail
