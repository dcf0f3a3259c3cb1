// gram_eigen.cu — qsweep/cuda/gram_eigen.h. Row-major W handed to the column-major libraries as
// Wᵀ: WᵀW (in ≤ out) is dsyrk(N) of each chunk's column-major view, WWᵀ is dsyrk(T) of the whole.
#include "qsweep/cuda/gram_eigen.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "device_alloc.cuh"

namespace qsweep::cuda {

namespace {

__global__ void to_double(const float* src, double* dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = static_cast<double>(src[i]);
}

struct Mem {  // device allocations freed on every path
  std::vector<void*> p;
  ~Mem() {
    for (void* q : p) cudaFree(q);
  }
  template <typename T>
  T* get(std::size_t n, const char* what) {
    void* q = detail::device_alloc(n * sizeof(T), std::string("the spectrum's ") + what);
    p.push_back(q);
    return static_cast<T*>(q);
  }
};

}  // namespace

std::vector<double> gram_eigenvalues(int ordinal, const float* w, int64_t out, int64_t in) {
  CUDA_CHECK(cudaSetDevice(ordinal));
  const bool cols = in <= out;
  const int64_t n = cols ? in : out;
  Mem mem;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  CUBLAS_CHECK(cublasCreate(&blas));
  struct Handles {
    cublasHandle_t& b;
    cusolverDnHandle_t& s;
    ~Handles() {
      if (s) cusolverDnDestroy(s);
      if (b) cublasDestroy(b);
    }
  } handles{blas, solver};
  if (cusolverDnCreate(&solver) != CUSOLVER_STATUS_SUCCESS) throw std::runtime_error("cusolverDnCreate failed");
  double* gram = mem.get<double>(static_cast<std::size_t>(n * n), "Gram matrix");
  const int64_t chunk = cols ? std::max<int64_t>(1, (int64_t(32) << 20) / (8 * in)) : out;  // the CPU's chunks
  const int64_t rows_max = std::min(chunk, out);
  float* wf = mem.get<float>(static_cast<std::size_t>(rows_max * in), "weights");
  double* wd = mem.get<double>(static_cast<std::size_t>(rows_max * in), "weights in fp64");
  for (int64_t r0 = 0; r0 < out; r0 += chunk) {
    const int64_t rows = std::min(chunk, out - r0);
    const std::size_t cnt = static_cast<std::size_t>(rows * in);
    CUDA_CHECK(cudaMemcpy(wf, w + r0 * in, cnt * sizeof(float), cudaMemcpyHostToDevice));
    to_double<<<static_cast<unsigned>(std::min<std::size_t>((cnt + 255) / 256, 65535)), 256>>>(wf, wd, cnt);
    CUDA_CHECK_LAUNCH();
    const double one = 1.0, beta = r0 == 0 ? 0.0 : 1.0;
    if (cols)
      CUBLAS_CHECK(cublasDsyrk(blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(rows),
                               &one, wd, static_cast<int>(in), &beta, gram, static_cast<int>(n)));
    else
      CUBLAS_CHECK(cublasDsyrk(blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_T, static_cast<int>(n), static_cast<int>(in),
                               &one, wd, static_cast<int>(in), &beta, gram, static_cast<int>(n)));
  }
  double* eig = mem.get<double>(static_cast<std::size_t>(n), "eigenvalues");
  int* info = mem.get<int>(1, "status");
  int lwork = 0;
  if (cusolverDnDsyevd_bufferSize(solver, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_UPPER, static_cast<int>(n), gram,
                                  static_cast<int>(n), eig, &lwork) != CUSOLVER_STATUS_SUCCESS)
    throw std::runtime_error("cusolverDnDsyevd_bufferSize failed");
  double* work = mem.get<double>(static_cast<std::size_t>(lwork), "cuSOLVER workspace");
  if (cusolverDnDsyevd(solver, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_UPPER, static_cast<int>(n), gram,
                       static_cast<int>(n), eig, work, lwork, info) != CUSOLVER_STATUS_SUCCESS)
    throw std::runtime_error("cusolverDnDsyevd failed on a " + std::to_string(n) + " x " + std::to_string(n) +
                             " Gram matrix");
  int h_info = 0;
  CUDA_CHECK(cudaMemcpy(&h_info, info, sizeof(int), cudaMemcpyDeviceToHost));
  if (h_info != 0)
    throw std::runtime_error("cusolverDnDsyevd: info " + std::to_string(h_info) + " on a " + std::to_string(n) + " x " +
                             std::to_string(n) + " Gram matrix");
  std::vector<double> out_eig(static_cast<std::size_t>(n));
  CUDA_CHECK(cudaMemcpy(out_eig.data(), eig, out_eig.size() * sizeof(double), cudaMemcpyDeviceToHost));
  std::sort(out_eig.begin(), out_eig.end(), std::greater<double>());
  return out_eig;
}

}  // namespace qsweep::cuda
