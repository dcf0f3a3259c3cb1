// refine.cu — qsweep/cuda/refine.h. Rows go in batches (their d and r = G'd within 256 MB); r
// starts as one cuBLAS dgemm D·G per batch, then a thread block per row makes its moves.
#include "qsweep/cuda/refine.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "check.cuh"
#include "device_buffer.cuh"

namespace qsweep::cuda {

namespace {

constexpr int kThreads = 256;

// quant/refine.cc move_target: the code a move takes w to (floor(u) or floor(u)+1 around the
// unrounded code u = w/s + z, clamped), or -1.
__device__ int move_target(float w, int code, float scale, int zero, int qmax) {
  const double u = static_cast<double>(w) / static_cast<double>(scale) + zero;
  const double fl = floor(u);
  const int lo = static_cast<int>(fmin(fmax(fl, 0.0), static_cast<double>(qmax)));
  const int hi = static_cast<int>(fmin(fmax(fl + 1, 0.0), static_cast<double>(qmax)));
  if (lo == hi) return code == lo ? -1 : lo;
  if (code == lo) return hi;
  if (code == hi) return lo;
  return fabs(u - lo) <= fabs(u - hi) ? lo : hi;
}

// d[r, c] = w − (code − z)·s for the batch's rows.
__global__ void residuals(const uint8_t* codes, const float* w, int rows, int in, const float* scales,
                          const int32_t* zeros, int groups, const int32_t* col_group, double* d) {
  const std::size_t n = static_cast<std::size_t>(rows) * in;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / in), c = static_cast<int>(i % in);
    const std::size_t gi = static_cast<std::size_t>(r) * groups + col_group[c];
    d[i] = static_cast<double>(w[i]) - (codes[i] - zeros[gi]) * static_cast<double>(scales[gi]);
  }
}

__device__ double block_sum(double v, double* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  const double total = part[0];
  __syncthreads();
  return total;
}

// A block per row: rg = D·G on entry (the damping term is added here), then the moves.
__global__ void row_moves(uint8_t* codes, const float* w, int in, const float* scales, const int32_t* zeros,
                          int groups, const int32_t* col_group, int qmax, const double* gram, double damp, double* d,
                          double* rg, double* before, double* after, long long* moves) {
  __shared__ double part[kThreads];
  __shared__ double best_df[kThreads];
  __shared__ int best_j[kThreads], best_to[kThreads];
  const int r = blockIdx.x;
  uint8_t* code = codes + static_cast<std::size_t>(r) * in;
  const float* wr = w + static_cast<std::size_t>(r) * in;
  double* dr = d + static_cast<std::size_t>(r) * in;
  double* rr = rg + static_cast<std::size_t>(r) * in;
  const float* sc = scales + static_cast<std::size_t>(r) * groups;
  const int32_t* ze = zeros + static_cast<std::size_t>(r) * groups;
  double f = 0;
  for (int a = threadIdx.x; a < in; a += kThreads) {
    rr[a] += damp * gram[static_cast<std::size_t>(a) * in + a] * dr[a];
    f += dr[a] * rr[a];
  }
  f = block_sum(f, part);
  if (threadIdx.x == 0) before[r] = f;
  long long n_moves = 0;
  for (;;) {
    double mine = 0;
    int mj = -1, mto = 0;
    for (int j = threadIdx.x; j < in; j += kThreads) {
      const int g = col_group[j];
      const int to = move_target(wr[j], code[j], sc[g], ze[g], qmax);
      if (to < 0) continue;
      const double delta = (to - code[j]) * static_cast<double>(sc[g]);
      const double df = -2 * delta * rr[j] + delta * delta * (1 + damp) * gram[static_cast<std::size_t>(j) * in + j];
      if (df < mine) mine = df, mj = j, mto = to;  // j rises: the first of equals is kept
    }
    best_df[threadIdx.x] = mine, best_j[threadIdx.x] = mj, best_to[threadIdx.x] = mto;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s /= 2) {  // the least df; ties to the lowest column
      if (static_cast<int>(threadIdx.x) < s) {
        const int o = threadIdx.x + s;
        const bool take = best_j[o] >= 0 && (best_j[threadIdx.x] < 0 || best_df[o] < best_df[threadIdx.x] ||
                                             (best_df[o] == best_df[threadIdx.x] && best_j[o] < best_j[threadIdx.x]));
        if (take) best_df[threadIdx.x] = best_df[o], best_j[threadIdx.x] = best_j[o], best_to[threadIdx.x] = best_to[o];
      }
      __syncthreads();
    }
    const int j = best_j[0], to = best_to[0];
    const double df = best_df[0];
    __syncthreads();
    if (j < 0 || !(df < -1e-12 * fabs(f))) break;  // the CPU's acceptance threshold
    const int g = col_group[j];
    const double delta = (to - code[j]) * static_cast<double>(sc[g]);
    const double* gj = gram + static_cast<std::size_t>(j) * in;  // G symmetric: column j = row j
    for (int a = threadIdx.x; a < in; a += kThreads) rr[a] -= delta * gj[a];
    __syncthreads();
    if (threadIdx.x == 0) {
      rr[j] -= delta * damp * gj[j];
      dr[j] -= delta;
      code[j] = static_cast<uint8_t>(to);
    }
    f += df;
    ++n_moves;
    __syncthreads();
  }
  if (threadIdx.x == 0) after[r] = f, moves[r] = n_moves;
}

}  // namespace

RefineTotals refine_greedy_exact(int ordinal, uint8_t* codes, const float* w, int out, int in, const float* scales,
                                 const int32_t* zeros, int groups, const int32_t* col_group, int qmax,
                                 const double* gram, double damp) {
  RefineTotals tot;
  if (out <= 0 || in <= 0) return tot;
  CUDA_CHECK(cudaSetDevice(ordinal));
  const std::size_t n = static_cast<std::size_t>(in);
  const int batch = static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(out, (std::size_t(128) << 20) / (n * 8))));
  const char* hint = "greedy-exact refinement: the Gram and a batch of rows (lower the layer size, or use a larger GPU)";
  const std::size_t bn = static_cast<std::size_t>(batch) * n, bg = static_cast<std::size_t>(batch) * groups;
  const std::size_t nb = static_cast<std::size_t>(batch);
  detail::DeviceBuffer<double> g(gram, n * n, "the refinement's Gram", hint);
  detail::DeviceBuffer<int32_t> cg(col_group, n, "the refinement's column groups", hint);
  detail::DeviceBuffer<uint8_t> c(bn, "the refinement's codes", hint);
  detail::DeviceBuffer<float> wd(bn, "the refinement's weights", hint), s(bg, "the refinement's scales", hint);
  detail::DeviceBuffer<int32_t> z(bg, "the refinement's zeros", hint);
  detail::DeviceBuffer<double> d(bn, "the refinement's residuals", hint), rg(bn, "the refinement's G·d", hint);
  detail::DeviceBuffer<double> bf(nb, "the refinement's objectives", hint), af(nb, "the refinement's objectives", hint);
  detail::DeviceBuffer<long long> mv(nb, "the refinement's move counts", hint);
  cublasHandle_t blas = nullptr;
  CUBLAS_CHECK(cublasCreate(&blas));
  struct Handle {
    cublasHandle_t h;
    ~Handle() { cublasDestroy(h); }
  } keep{blas};
  std::vector<double> before(static_cast<std::size_t>(batch)), after(before.size());
  std::vector<long long> moves(before.size());
  for (int r0 = 0; r0 < out; r0 += batch) {
    const int rows = std::min(batch, out - r0);
    const std::size_t rn = static_cast<std::size_t>(rows) * n, rgr = static_cast<std::size_t>(rows) * groups;
    CUDA_CHECK(cudaMemcpy(c.get(), codes + static_cast<std::size_t>(r0) * n, rn, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(wd.get(), w + static_cast<std::size_t>(r0) * n, rn * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(s.get(), scales + static_cast<std::size_t>(r0) * groups, rgr * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(z.get(), zeros + static_cast<std::size_t>(r0) * groups, rgr * sizeof(int32_t), cudaMemcpyHostToDevice));
    residuals<<<static_cast<unsigned>(std::min<std::size_t>((rn + 255) / 256, 65535)), 256>>>(
        c.get(), wd.get(), rows, in, s.get(), z.get(), groups, cg.get(), d.get());
    CUDA_CHECK_LAUNCH();
    // Row-major RG [rows, in] = D [rows, in] · G [in, in]; column-major: RGᵀ = G·Dᵀ (G symmetric).
    const double one = 1.0, zero = 0.0;
    CUBLAS_CHECK(cublasDgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, in, rows, in, &one, g.get(), in, d.get(), in, &zero,
                             rg.get(), in));
    row_moves<<<static_cast<unsigned>(rows), kThreads>>>(c.get(), wd.get(), in, s.get(), z.get(), groups, cg.get(), qmax,
                                                         g.get(), damp, d.get(), rg.get(), bf.get(), af.get(), mv.get());
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaMemcpy(codes + static_cast<std::size_t>(r0) * n, c.get(), rn, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(before.data(), bf.get(), static_cast<std::size_t>(rows) * sizeof(double), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(after.data(), af.get(), static_cast<std::size_t>(rows) * sizeof(double), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(moves.data(), mv.get(), static_cast<std::size_t>(rows) * sizeof(long long), cudaMemcpyDeviceToHost));
    for (int i = 0; i < rows; ++i) tot.before += before[i], tot.after += after[i], tot.moves += moves[i];
  }
  return tot;
}

}  // namespace qsweep::cuda
