// grad_ops.cu — the training kernels of grad_ops.cuh (formulas: train/grad_ops.h, grad_ops.cc,
// grad_fake_quant.cc, grad_attention.cc). The fake quantizer's forward is the CPU's arithmetic
// operation for operation (IEEE division, round-half-even rintf, no contraction possible), so
// its ŵ are the CPU's bits; the reductions (norms, group sums, column sums) run in another fixed
// order than the CPU's loops and agree to fp32 rounding.
#include "check.cuh"
#include "grad_ops.cuh"
#include "reduce.cuh"

#include <cfloat>

namespace qsweep::cuda::detail {
namespace {

constexpr int kThreads = 256;
constexpr int kColumnChunk = 256;  // rows per partial column sum

unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 1048576) b = 1048576;  // grid-stride loops cover the rest
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

__global__ void fake_quant_kernel(const float* W, const float* scales, const float* zeros, int out, int in, int group,
                                  int ng, float qmax, float* Wq) {
  const int64_t n = static_cast<int64_t>(out) * in;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / in;
    const int c = static_cast<int>(i - r * in);
    const int64_t gi = r * ng + c / group;
    const float s = scales[gi], rz = rintf(zeros[gi]);
    const float q = fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(W[i], s)), rz), 0.0f), qmax);
    Wq[i] = __fmul_rn(__fsub_rn(q, rz), s);
  }
}

// One thread per (row, group): the group's columns in order, as the CPU.
__global__ void fake_quant_backward_kernel(const float* W, const float* scales, const float* zeros, int out, int in,
                                           int group, int ng, float qmax, float* dW, float* dscales, float* dzeros) {
  const int64_t tasks = static_cast<int64_t>(out) * ng;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < tasks; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / ng;
    const int g = static_cast<int>(t - r * ng);
    const float s = scales[t], rz = rintf(zeros[t]);
    const int64_t o = r * in + static_cast<int64_t>(g) * group;
    const int len = min(group, in - g * group);
    float ds = 0.0f, dz = 0.0f;
    for (int c = 0; c < len; ++c) {
      const float ws = __fdiv_rn(W[o + c], s);
      const float rq = rintf(ws) + rz;
      const float d = dW[o + c];
      if (rq >= 0.0f && rq <= qmax) {
        ds += d * (rq - rz - ws);
      } else {
        const float q = rq < 0.0f ? 0.0f : qmax;
        ds += d * (q - rz);
        dz -= d * s;
        dW[o + c] = 0.0f;
      }
    }
    dscales[t] = ds;
    dzeros[t] = dz;
  }
}

// One warp per vector.
__global__ void norm_vectors_kernel(const float* x, float* y, int64_t ld, int64_t vectors, int per_row, int n,
                                    const float* w, float eps, float* inv) {
  const int64_t v = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (v >= vectors) return;
  const int lane = threadIdx.x % 32;
  const int64_t o = (v / per_row) * ld + (v % per_row) * n;
  float ss = 0.0f;
  for (int c = lane; c < n; c += 32) ss += x[o + c] * x[o + c];
  ss = warp_sum(ss);
  const float iv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  for (int c = lane; c < n; c += 32) y[o + c] = (x[o + c] * iv) * w[c];
  if (lane == 0) inv[v] = iv;
}

__global__ void norm_vectors_backward_kernel(const float* x, const float* w, const float* inv, const float* dy,
                                             float* dx, int64_t ld, int64_t vectors, int per_row, int n, float* part) {
  const int64_t v = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (v >= vectors) return;
  const int lane = threadIdx.x % 32;
  const int64_t o = (v / per_row) * ld + (v % per_row) * n;
  const float iv = inv[v];
  float dot = 0.0f;
  for (int c = lane; c < n; c += 32) dot += dy[o + c] * w[c] * x[o + c];
  dot = warp_sum(dot);
  const float k = dot * iv * iv * iv / static_cast<float>(n);
  for (int c = lane; c < n; c += 32) {
    const float d = dy[o + c];  // dx may alias dy: each element is read before it is written
    part[v * n + c] = d * x[o + c] * iv;
    dx[o + c] = iv * d * w[c] - x[o + c] * k;
  }
}

// Partial sums of chunks of kColumnChunk rows: scratch[chunk, c].
__global__ void column_partial_kernel(const float* x, int64_t rows, int cols, int64_t ld, float* scratch) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kColumnChunk;
  const int64_t r1 = min(rows, r0 + kColumnChunk);
  float s = 0.0f;
  for (int64_t r = r0; r < r1; ++r) s += x[r * ld + c];
  scratch[static_cast<int64_t>(blockIdx.y) * cols + c] = s;
}

__global__ void column_finish_kernel(const float* scratch, int chunks, int cols, float* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s = 0.0f;
  for (int k = 0; k < chunks; ++k) s += scratch[static_cast<int64_t>(k) * cols + c];
  out[c] += s;
}

__global__ void silu_mul_backward_kernel(const float* gu, const float* dact, float* dgu, int64_t rows, int inter) {
  const int64_t n = rows * inter;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter;
    const int c = static_cast<int>(i - r * inter);
    const float g = gu[r * 2 * inter + c], u = gu[r * 2 * inter + inter + c], da = dact[i];
    const float sig = 1.0f / (1.0f + expf(-g));
    dgu[r * 2 * inter + c] = da * u * sig * (1.0f + g * (1.0f - sig));
    dgu[r * 2 * inter + inter + c] = da * g * sig;
  }
}

// One block per row.
__global__ void softmax_backward_kernel(const float* P, float* dPS, int T) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  const float* p = P + row * T;
  float* d = dPS + row * T;
  float dot = 0.0f;
  for (int j = threadIdx.x; j < T; j += blockDim.x) dot += p[j] * d[j];
  dot = block_sum(dot, red);
  for (int j = threadIdx.x; j < T; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
}

// One block per row: the max, Σ exp(l − max) in fp64, then the gradient row.
__global__ void softmax_xent_kernel(float* logits, int vocab, const int32_t* targets, float c, double* nll) {
  __shared__ float redf[32];
  __shared__ double redd[32];
  const int64_t r = blockIdx.x;
  float* row = logits + r * vocab;
  const int t = targets[r];
  float mx = -FLT_MAX;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = block_max(mx, redf);
  double sum = 0.0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) sum += exp(static_cast<double>(row[j] - mx));
  sum = block_sum(sum, redd);
  const float target_logit = row[t];
  __syncthreads();  // every thread has read row[t] before it is overwritten
  const float inv = static_cast<float>(1.0 / sum);
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float p = expf(row[j] - mx) * inv;
    row[j] = c * p - (j == t ? c : 0.0f);
  }
  if (threadIdx.x == 0) nll[r] = static_cast<double>(mx) + log(sum) - static_cast<double>(target_logit);
}

__global__ void scale_copy_kernel(const float* x, float a, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] * a;
}

float qmax_of(int bits) { return static_cast<float>((1 << bits) - 1); }

}  // namespace

void launch_fake_quant(const float* W, const float* scales, const float* zeros, int out, int in, int group, int bits,
                       float* Wq, cudaStream_t s) {
  const int ng = (in + group - 1) / group;
  fake_quant_kernel<<<blocks_for(int64_t(out) * in, kThreads), kThreads, 0, s>>>(W, scales, zeros, out, in, group, ng,
                                                                                 qmax_of(bits), Wq);
  CUDA_CHECK_LAUNCH();
}

void launch_fake_quant_backward(const float* W, const float* scales, const float* zeros, int out, int in, int group,
                                int bits, float* dW, float* dscales, float* dzeros, cudaStream_t s) {
  const int ng = (in + group - 1) / group;
  fake_quant_backward_kernel<<<blocks_for(int64_t(out) * ng, kThreads), kThreads, 0, s>>>(
      W, scales, zeros, out, in, group, ng, qmax_of(bits), dW, dscales, dzeros);
  CUDA_CHECK_LAUNCH();
}

void launch_norm_vectors(const float* x, float* y, int64_t ld, int64_t rows, int per_row, int n, const float* w,
                         float eps, float* inv, cudaStream_t s) {
  const int64_t vectors = rows * per_row;
  if (vectors == 0) return;
  const int per_block = kThreads / 32;
  norm_vectors_kernel<<<static_cast<unsigned>((vectors + per_block - 1) / per_block), kThreads, 0, s>>>(
      x, y, ld, vectors, per_row, n, w, eps, inv);
  CUDA_CHECK_LAUNCH();
}

void launch_norm_vectors_backward(const float* x, const float* w, const float* inv, const float* dy, float* dx,
                                  int64_t ld, int64_t rows, int per_row, int n, float* part, cudaStream_t s) {
  const int64_t vectors = rows * per_row;
  if (vectors == 0) return;
  const int per_block = kThreads / 32;
  norm_vectors_backward_kernel<<<static_cast<unsigned>((vectors + per_block - 1) / per_block), kThreads, 0, s>>>(
      x, w, inv, dy, dx, ld, vectors, per_row, n, part);
  CUDA_CHECK_LAUNCH();
}

void launch_column_sum_add(const float* x, int64_t rows, int cols, int64_t ld, float* out, float* scratch,
                           cudaStream_t s) {
  if (rows == 0 || cols == 0) return;
  const int64_t chunks = (rows + kColumnChunk - 1) / kColumnChunk;
  const dim3 grid((cols + kThreads - 1) / kThreads, static_cast<unsigned>(chunks));
  column_partial_kernel<<<grid, kThreads, 0, s>>>(x, rows, cols, ld, scratch);
  CUDA_CHECK_LAUNCH();
  column_finish_kernel<<<(cols + kThreads - 1) / kThreads, kThreads, 0, s>>>(scratch, static_cast<int>(chunks), cols,
                                                                              out);
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul_backward(const float* gu, const float* dact, float* dgu, int64_t rows, int inter,
                              cudaStream_t s) {
  silu_mul_backward_kernel<<<blocks_for(rows * inter, kThreads), kThreads, 0, s>>>(gu, dact, dgu, rows, inter);
  CUDA_CHECK_LAUNCH();
}

void launch_softmax_backward(const float* P, float* dPS, int64_t blocks, int T, cudaStream_t s) {
  const int64_t rows = blocks * T;
  if (rows == 0) return;
  softmax_backward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(P, dPS, T);
  CUDA_CHECK_LAUNCH();
}

void launch_softmax_xent_rows(float* logits, int64_t n, int vocab, const int32_t* targets, float c, double* nll,
                              cudaStream_t s) {
  if (n == 0) return;
  softmax_xent_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(logits, vocab, targets, c, nll);
  CUDA_CHECK_LAUNCH();
}

void launch_scale_copy(const float* x, float a, float* y, int64_t n, cudaStream_t s) {
  scale_copy_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, a, y, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace qsweep::cuda::detail
