// exact_gram.cu — qsweep/cuda/exact_gram.h. The fixed-point conversion is the CPU's own
// (stats/fixed_point.h, compiled for both), so the device adds the same integers the CPU would for
// the same fp64 value; only the dgemm's rounding of each chunk's xᵀx entries differs from OpenBLAS's.
#include "qsweep/cuda/exact_gram.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.cuh"
#include "device_alloc.cuh"
#include "stats/fixed_point.h"

namespace qsweep::cuda {

namespace {

constexpr int kTile = 64;

__global__ void to_fp64(const float* x, double* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = static_cast<double>(x[i]);
}

// acc[i * jn + j] += fixed(tile[i * jn + j]) for the m × jn tile; out-of-range entries set status.
__global__ void accumulate_tile(const double* tile, unsigned __int128* acc, int m, int jn, int* status) {
  const std::size_t n = static_cast<std::size_t>(m) * jn;
  const double kMax = 4611686018427387904.0;  // 2^62
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const double v = tile[i];
    if (!(fabs(v) < kMax)) {
      atomicMax(status, isfinite(v) ? 2 : 1);
      continue;
    }
    acc[i] += fixed_from_double(v);  // stats/fixed_point.h: the CPU's conversion
  }
}

std::size_t tile_offset(int t, int C) {  // ExactGram's packed layout (exact_gram.cc)
  std::size_t off = 0;
  for (int u = 0; u < t; ++u) {
    const int j0 = u * kTile, jn = std::min(kTile, C - j0);
    off += static_cast<std::size_t>(j0 + jn) * jn;
  }
  return off;
}

void* dalloc(std::size_t bytes, const char* what) {
  return detail::device_alloc(bytes, std::string("Σxxᵀ's ") + what, "lower --calib-chunk, or use more GPUs");
}

unsigned grid_for(std::size_t n) { return static_cast<unsigned>(std::min<std::size_t>((n + 255) / 256, 65535)); }

}  // namespace

struct GramAccumulator::Impl {
  int ordinal = 0, C = 0;
  std::size_t packed = 0;
  unsigned __int128* acc = nullptr;
  double *xd = nullptr, *tile = nullptr;
  std::size_t xd_cap = 0;
  int* status = nullptr;
  cublasHandle_t blas = nullptr;
  cudaStream_t stream = nullptr;
  ~Impl() {
    for (void* p : {static_cast<void*>(acc), static_cast<void*>(xd), static_cast<void*>(tile), static_cast<void*>(status)})
      if (p) cudaFree(p);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }
};

GramAccumulator::GramAccumulator(int ordinal, int channels, std::size_t packed) : impl_(new Impl) {
  Impl& m = *impl_;
  m.ordinal = ordinal, m.C = channels, m.packed = packed;
  CUDA_CHECK(cudaSetDevice(ordinal));
  if (packed != tile_offset((channels + kTile - 1) / kTile, channels))
    throw std::logic_error("GramAccumulator: packed size disagrees with ExactGram's layout");
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&m.blas));
  CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
  m.acc = static_cast<unsigned __int128*>(dalloc(packed * sizeof(unsigned __int128), "accumulator"));
  m.tile = static_cast<double*>(dalloc(static_cast<std::size_t>(channels) * kTile * sizeof(double), "tile"));
  m.status = static_cast<int*>(dalloc(sizeof(int), "status"));
  CUDA_CHECK(cudaMemsetAsync(m.acc, 0, packed * sizeof(unsigned __int128), m.stream));
  CUDA_CHECK(cudaMemsetAsync(m.status, 0, sizeof(int), m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

GramAccumulator::~GramAccumulator() = default;

void GramAccumulator::add(const float* x, int64_t rows) {
  Impl& m = *impl_;
  if (rows <= 0) return;
  CUDA_CHECK(cudaSetDevice(m.ordinal));
  const std::size_t n = static_cast<std::size_t>(rows) * m.C;
  if (n > m.xd_cap) {
    if (m.xd) cudaFree(m.xd);
    m.xd = nullptr;
    m.xd = static_cast<double*>(dalloc(n * sizeof(double), "fp64 activations"));
    m.xd_cap = n;
  }
  to_fp64<<<grid_for(n), 256, 0, m.stream>>>(x, m.xd, n);
  CUDA_CHECK_LAUNCH();
  const int C = m.C, tiles = (C + kTile - 1) / kTile;
  const double one = 1.0, zero = 0.0;
  for (int t = 0; t < tiles; ++t) {
    const int j0 = t * kTile, jn = std::min(kTile, C - j0), mm = j0 + jn;
    // Row-major tile [mm, jn] = xd[:, 0:mm]ᵀ · xd[:, j0:j0+jn]; column-major: tileᵀ = Bᶜ · Aᶜᵀ.
    CUBLAS_CHECK(cublasDgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_T, jn, mm, static_cast<int>(rows), &one, m.xd + j0, C,
                             m.xd, C, &zero, m.tile, jn));
    const std::size_t cnt = static_cast<std::size_t>(mm) * jn;
    accumulate_tile<<<grid_for(cnt), 256, 0, m.stream>>>(m.tile, m.acc + tile_offset(t, C), mm, jn, m.status);
    CUDA_CHECK_LAUNCH();
  }
  CUDA_CHECK(cudaStreamSynchronize(m.stream));  // the caller may overwrite x after this returns
}

int GramAccumulator::status() const {
  int s = 0;
  CUDA_CHECK(cudaMemcpy(&s, impl_->status, sizeof(int), cudaMemcpyDeviceToHost));
  return s;
}

void GramAccumulator::drain(void* acc_host, bool host_is_zero) {
  Impl& m = *impl_;
  const std::size_t bytes = m.packed * sizeof(unsigned __int128);
  if (host_is_zero) {
    CUDA_CHECK(cudaMemcpy(acc_host, m.acc, bytes, cudaMemcpyDeviceToHost));
  } else {  // uninitialised scratch: the copy overwrites it
    std::unique_ptr<unsigned __int128[]> dev(new unsigned __int128[m.packed]);
    CUDA_CHECK(cudaMemcpy(dev.get(), m.acc, bytes, cudaMemcpyDeviceToHost));
    auto* host = static_cast<unsigned __int128*>(acc_host);
    for (std::size_t i = 0; i < m.packed; ++i) host[i] += dev[i];
  }
  CUDA_CHECK(cudaMemset(m.acc, 0, m.packed * sizeof(unsigned __int128)));
}

void* GramAccumulator::device_data() { return impl_->acc; }

}  // namespace qsweep::cuda
