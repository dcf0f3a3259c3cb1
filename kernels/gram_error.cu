// gram_error.cu — qsweep/cuda/gram_error.h.
#include "qsweep/cuda/gram_error.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.cuh"
#include "device_alloc.cuh"
#include "grid.cuh"

namespace qsweep::cuda {

namespace {

__global__ void diff_fp64(const float* w, const float* what, double* d, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    d[i] = static_cast<double>(w[i]) - static_cast<double>(what[i]);
}

constexpr int kDotBlocks = 256, kDotThreads = 256;

// The 256-thread block's values summed by a fixed tree; thread 0 returns the total.
__device__ double block_tree_sum(double s) {
  __shared__ double part[kDotThreads];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kDotThreads / 2; w > 0; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  return part[0];
}

// Stage 1: partial[b] = Σ over block b's fixed grid-stride share of d[k]·dg[k].
__global__ void dot_partials(const double* d, const double* dg, std::size_t n, double* partial) {
  double s = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(kDotThreads) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(kDotBlocks) * kDotThreads)
    s += d[i] * dg[i];
  s = block_tree_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2: *out = the partials' sum (fixed order: the result never depends on timing).
__global__ void dot_finish(const double* partial, double* out) {
  const double s = block_tree_sum(partial[threadIdx.x]);
  if (threadIdx.x == 0) *out = s;
}

// One thread per (row, group): the CPU's grid (grid.cuh) on the scaled row, then ÷ s.
__global__ void scaled_rtn(const float* w, const float* s, float* what, int out, int in, int gl, int ng, int bits,
                           bool sym) {
  const std::size_t idx = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<std::size_t>(out) * ng) return;
  const int r = static_cast<int>(idx / ng), g = static_cast<int>(idx % ng);
  const int c0 = g * gl, n = min(gl, in - c0);
  const float* wr = w + static_cast<std::size_t>(r) * in + c0;
  const float* sg = s + c0;
  float* qr = what + static_cast<std::size_t>(r) * in + c0;
  const auto scaled = [&](int c) { return __fmul_rn(wr[c], sg[c]); };
  const detail::GridParams p = detail::grid_params(scaled, n, bits, sym);
  for (int c = 0; c < n; ++c) qr[c] = __fdiv_rn(detail::grid_value(detail::grid_code(scaled(c), p, bits), p), sg[c]);
}

void* dalloc(std::size_t bytes, const char* what) {
  return detail::device_alloc(bytes, std::string("AWQ's ") + what);
}

}  // namespace

struct GramError::Impl {
  int ordinal = 0, in = 0, tile_rows = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  double *gram = nullptr, *d = nullptr, *dg = nullptr, *dot = nullptr, *partial = nullptr;
  float *w = nullptr, *what = nullptr, *s = nullptr;
  std::size_t w_cap = 0, what_cap = 0;
  // p holds at least n floats (reallocated when it held fewer).
  static float* sized(float*& p, std::size_t& cap, std::size_t n, const char* what) {
    if (n > cap) {
      if (p) cudaFree(p);
      p = nullptr, cap = 0;
      p = static_cast<float*>(dalloc(n * sizeof(float), what));
      cap = n;
    }
    return p;
  }
  std::vector<float*> layers;  // add_weights
  std::vector<int> layer_out;
  double error_resident(const float* wd, const float* whatd, int out);
  ~Impl() {
    for (float* p : layers) cudaFree(p);
    for (void* p : {static_cast<void*>(gram), static_cast<void*>(d), static_cast<void*>(dg), static_cast<void*>(dot),
                    static_cast<void*>(partial),
                    static_cast<void*>(w), static_cast<void*>(what), static_cast<void*>(s)})
      if (p) cudaFree(p);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }
};

GramError::GramError(int ordinal, const double* gram, int in) : impl_(new Impl) {
  Impl& m = *impl_;
  m.ordinal = ordinal, m.in = in;
  CUDA_CHECK(cudaSetDevice(ordinal));
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&m.blas));
  CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
  const std::size_t n = static_cast<std::size_t>(in);
  m.gram = static_cast<double*>(dalloc(n * n * sizeof(double), "calibration Gram"));
  CUDA_CHECK(cudaMemcpyAsync(m.gram, gram, n * n * sizeof(double), cudaMemcpyHostToDevice, m.stream));
  // Row tiles of d and d·G within 128 MB each.
  m.tile_rows = static_cast<int>(std::max<std::size_t>(1, (std::size_t(128) << 20) / (n * sizeof(double))));
  m.d = static_cast<double*>(dalloc(static_cast<std::size_t>(m.tile_rows) * n * sizeof(double), "error rows"));
  m.dg = static_cast<double*>(dalloc(static_cast<std::size_t>(m.tile_rows) * n * sizeof(double), "error rows"));
  m.dot = static_cast<double*>(dalloc(sizeof(double) * 4096, "tile sums"));
  m.partial = static_cast<double*>(dalloc(sizeof(double) * kDotBlocks, "partial sums"));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

GramError::~GramError() = default;

double GramError::error(const float* w, const float* what, int out) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaSetDevice(m.ordinal));
  const std::size_t total = static_cast<std::size_t>(out) * m.in;
  Impl::sized(m.w, m.w_cap, total, "weights");
  Impl::sized(m.what, m.what_cap, total, "quantized weights");
  CUDA_CHECK(cudaMemcpyAsync(m.w, w, total * sizeof(float), cudaMemcpyHostToDevice, m.stream));
  CUDA_CHECK(cudaMemcpyAsync(m.what, what, total * sizeof(float), cudaMemcpyHostToDevice, m.stream));
  return m.error_resident(m.w, m.what, out);
}

int GramError::add_weights(const float* w, int out) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaSetDevice(m.ordinal));
  const std::size_t total = static_cast<std::size_t>(out) * m.in;
  float* d = static_cast<float*>(dalloc(total * sizeof(float), "weights of the searched layers"));
  m.layers.push_back(d);
  m.layer_out.push_back(out);
  CUDA_CHECK(cudaMemcpyAsync(d, w, total * sizeof(float), cudaMemcpyHostToDevice, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  return static_cast<int>(m.layers.size()) - 1;
}

double GramError::scaled_rtn_error(int k, const float* s, int bits, int group_size, bool sym) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaSetDevice(m.ordinal));
  const int out = m.layer_out.at(static_cast<std::size_t>(k));
  Impl::sized(m.what, m.what_cap, static_cast<std::size_t>(out) * m.in, "quantized weights");
  if (!m.s) m.s = static_cast<float*>(dalloc(static_cast<std::size_t>(m.in) * sizeof(float), "scales"));
  CUDA_CHECK(cudaMemcpyAsync(m.s, s, static_cast<std::size_t>(m.in) * sizeof(float), cudaMemcpyHostToDevice, m.stream));
  const int gl = group_size < 0 ? m.in : group_size, ng = (m.in + gl - 1) / gl;
  const std::size_t threads = static_cast<std::size_t>(out) * ng;
  scaled_rtn<<<static_cast<unsigned>((threads + 127) / 128), 128, 0, m.stream>>>(m.layers[static_cast<std::size_t>(k)], m.s,
                                                                                m.what, out, m.in, gl, ng, bits, sym);
  CUDA_CHECK_LAUNCH();
  return m.error_resident(m.layers[static_cast<std::size_t>(k)], m.what, out);
}

double GramError::Impl::error_resident(const float* wd, const float* whatd, int out) {
  Impl& m = *this;
  const std::size_t in = static_cast<std::size_t>(m.in);
  const int tiles = (out + m.tile_rows - 1) / m.tile_rows;
  std::vector<double> sums(static_cast<std::size_t>(tiles));
  const double one = 1.0, zero = 0.0;
  for (int t0 = 0; t0 < tiles; t0 += 4096) {  // tile sums kept on the device, 4096 at a time
    const int tn = std::min(4096, tiles - t0);
    for (int t = t0; t < t0 + tn; ++t) {
      const int r0 = t * m.tile_rows, rn = std::min(m.tile_rows, out - r0);
      const std::size_t cnt = static_cast<std::size_t>(rn) * in;
      diff_fp64<<<static_cast<unsigned>(std::min<std::size_t>((cnt + 255) / 256, 65535)), 256, 0, m.stream>>>(
          wd + static_cast<std::size_t>(r0) * in, whatd + static_cast<std::size_t>(r0) * in, m.d, cnt);
      CUDA_CHECK_LAUNCH();
      // Row-major dg [rn, in] = d [rn, in] · G [in, in]; column-major: dgᵀ = Gᵀ·dᵀ = G·dᵀ (G symmetric).
      CUBLAS_CHECK(cublasDgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_N, m.in, rn, m.in, &one, m.gram, m.in, m.d, m.in, &zero,
                               m.dg, m.in));
      dot_partials<<<kDotBlocks, kDotThreads, 0, m.stream>>>(m.d, m.dg, cnt, m.partial);
      CUDA_CHECK_LAUNCH();
      dot_finish<<<1, kDotThreads, 0, m.stream>>>(m.partial, m.dot + (t - t0));
      CUDA_CHECK_LAUNCH();
    }
    CUDA_CHECK(cudaMemcpyAsync(sums.data() + t0, m.dot, tn * sizeof(double), cudaMemcpyDeviceToHost, m.stream));
    CUDA_CHECK(cudaStreamSynchronize(m.stream));
  }
  double s = 0;
  for (double v : sums) s += v;  // tile order: fixed
  return s;
}

}  // namespace qsweep::cuda
