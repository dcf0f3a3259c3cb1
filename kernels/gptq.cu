// gptq.cu — qsweep/cuda/gptq.h: GPTQ's factorisation, block quantization and trailing update.
//
// Row-major buffers are handed to the column-major libraries as their transposes, as the CPU
// code does with LAPACK: a symmetric matrix's row-major lower triangle is its column-major upper
// one, so dpotrf('U') leaves the row-major L, dpotri('U') the row-major lower triangle of H⁻¹,
// which a kernel mirrors, and dpotrf('L') then the row-major upper factor U.
#include "qsweep/cuda/gptq.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <stdexcept>
#include <string>

#include "check.cuh"
#include "device_alloc.cuh"

namespace qsweep::cuda {

namespace {

#define CUSOLVER_CHECK(expr)                                                                            \
  do {                                                                                                  \
    const cusolverStatus_t st_ = (expr);                                                                \
    if (st_ != CUSOLVER_STATUS_SUCCESS)                                                                 \
      ::qsweep::cuda::detail::throw_error(__FILE__, __LINE__, #expr, "cusolver status " + std::to_string(st_)); \
  } while (0)

template <typename T>
T* alloc(std::size_t n, const char* what) {
  return static_cast<T*>(detail::device_alloc(n * sizeof(T), std::string("GPTQ's ") + what));
}

__global__ void add_diagonal(double* h, int n, double lambda) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) h[static_cast<std::size_t>(i) * n + i] += lambda;
}

// Row-major: upper[i][j] = lower[j][i] for j > i (mirror H⁻¹'s lower triangle).
__global__ void mirror_lower_to_upper(double* h, int n) {
  const int i = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j > i && j < n) h[static_cast<std::size_t>(i) * n + j] = h[static_cast<std::size_t>(j) * n + i];
}

__global__ void zero_strict_lower(double* h, int n) {
  const int i = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j < i) h[static_cast<std::size_t>(i) * n + j] = 0.0;
}

// One thread per row: the CPU loop of gptq.cc for that row, same operation order.
__global__ void quantize_block_kernel(double* W, int out, int in, const double* U, int i1, int i2,
                                      const float* scales, const int32_t* zeros, int ng, const int32_t* gcol,
                                      int bits, uint8_t* codes, double* err, int B) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= out) return;
  const int count = i2 - i1, qmax = (1 << bits) - 1;
  double* wr = W + static_cast<std::size_t>(r) * in;
  for (int i = 0; i < count; ++i) {
    const int col = i1 + i;
    const float scale = scales[static_cast<std::size_t>(r) * ng + gcol[i]];
    const int zero = zeros[static_cast<std::size_t>(r) * ng + gcol[i]];
    const float wv = static_cast<float>(wr[col]);
    int q = static_cast<int>(rintf(__fdiv_rn(wv, scale))) + zero;  // ties to even, IEEE division
    q = q < 0 ? 0 : (q > qmax ? qmax : q);
    codes[static_cast<std::size_t>(r) * count + i] = static_cast<uint8_t>(q);
    const float deq = __fmul_rn(static_cast<float>(q - zero), scale);
    const double* urow = U + static_cast<std::size_t>(col) * in;
    const double e = (wr[col] - static_cast<double>(deq)) / urow[col];
    for (int j = col + 1; j < i2; ++j) wr[j] = __dsub_rn(wr[j], __dmul_rn(e, urow[j]));  // no FMA: the CPU's rounding
    err[static_cast<std::size_t>(r) * B + i] = e;
  }
}

}  // namespace

struct GptqColumns::Impl {
  int out = 0, in = 0, B = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  double *W = nullptr, *U = nullptr, *err = nullptr, *work = nullptr;
  int* info = nullptr;
  int lwork = 0;
  float* scales = nullptr;
  int32_t *zeros = nullptr, *gcol = nullptr;
  uint8_t* codes = nullptr;
  int ng_cap = 0;
  ~Impl() {
    for (void* p : {static_cast<void*>(W), static_cast<void*>(U), static_cast<void*>(err), static_cast<void*>(work),
                    static_cast<void*>(info), static_cast<void*>(scales), static_cast<void*>(zeros),
                    static_cast<void*>(gcol), static_cast<void*>(codes)})
      if (p) cudaFree(p);
    if (solver) cusolverDnDestroy(solver);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }
  bool ok_info() {
    int h = 0;
    CUDA_CHECK(cudaMemcpyAsync(&h, info, sizeof(int), cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return h == 0;
  }
};

GptqColumns::GptqColumns(int ordinal, int out, int in, int block) : impl_(new Impl) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaSetDevice(ordinal));
  m.out = out, m.in = in, m.B = block;
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&m.blas));
  CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
  CUSOLVER_CHECK(cusolverDnCreate(&m.solver));
  CUSOLVER_CHECK(cusolverDnSetStream(m.solver, m.stream));
  const std::size_t n = static_cast<std::size_t>(in);
  m.W = alloc<double>(static_cast<std::size_t>(out) * n, "weights");
  m.U = alloc<double>(n * n, "Hessian factor");
  m.err = alloc<double>(static_cast<std::size_t>(out) * block, "block errors");
  m.info = alloc<int>(1, "status");
  m.gcol = alloc<int32_t>(static_cast<std::size_t>(block), "column groups");
  m.codes = alloc<uint8_t>(static_cast<std::size_t>(out) * block, "codes");
  int l1 = 0, l2 = 0, l3 = 0;
  CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(m.solver, CUBLAS_FILL_MODE_UPPER, in, m.U, in, &l1));
  CUSOLVER_CHECK(cusolverDnDpotri_bufferSize(m.solver, CUBLAS_FILL_MODE_UPPER, in, m.U, in, &l2));
  CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(m.solver, CUBLAS_FILL_MODE_LOWER, in, m.U, in, &l3));
  m.lwork = l1 > l2 ? l1 : l2;
  if (l3 > m.lwork) m.lwork = l3;
  m.work = alloc<double>(static_cast<std::size_t>(m.lwork > 0 ? m.lwork : 1), "cuSOLVER workspace");
}

GptqColumns::~GptqColumns() = default;

bool GptqColumns::factor(const double* H, double lambda) {
  Impl& m = *impl_;
  const int n = m.in;
  CUDA_CHECK(cudaMemcpyAsync(m.U, H, sizeof(double) * n * n, cudaMemcpyHostToDevice, m.stream));
  add_diagonal<<<(n + 255) / 256, 256, 0, m.stream>>>(m.U, n, lambda);
  CUDA_CHECK_LAUNCH();
  CUSOLVER_CHECK(cusolverDnDpotrf(m.solver, CUBLAS_FILL_MODE_UPPER, n, m.U, n, m.work, m.lwork, m.info));
  if (!m.ok_info()) return false;
  CUSOLVER_CHECK(cusolverDnDpotri(m.solver, CUBLAS_FILL_MODE_UPPER, n, m.U, n, m.work, m.lwork, m.info));
  if (!m.ok_info()) return false;
  const dim3 grid((n + 255) / 256, n);
  mirror_lower_to_upper<<<grid, 256, 0, m.stream>>>(m.U, n);
  CUDA_CHECK_LAUNCH();
  CUSOLVER_CHECK(cusolverDnDpotrf(m.solver, CUBLAS_FILL_MODE_LOWER, n, m.U, n, m.work, m.lwork, m.info));
  if (!m.ok_info()) return false;
  zero_strict_lower<<<grid, 256, 0, m.stream>>>(m.U, n);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  return true;
}

void GptqColumns::upload_weights(const double* W) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaMemcpyAsync(m.W, W, sizeof(double) * m.out * static_cast<std::size_t>(m.in), cudaMemcpyHostToDevice,
                             m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void GptqColumns::download_columns(int c0, int n, double* rows) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaMemcpy2DAsync(rows, sizeof(double) * n, m.W + c0, sizeof(double) * m.in, sizeof(double) * n, m.out,
                               cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void GptqColumns::quantize_block(int i1, int i2, const float* scales, const int32_t* zeros, int ng,
                                 const int32_t* gcol, int bits, uint8_t* codes) {
  Impl& m = *impl_;
  const int count = i2 - i1;
  if (ng > m.ng_cap) {
    if (m.scales) cudaFree(m.scales);
    if (m.zeros) cudaFree(m.zeros);
    m.scales = nullptr, m.zeros = nullptr;
    m.scales = alloc<float>(static_cast<std::size_t>(m.out) * ng, "grid scales");
    m.zeros = alloc<int32_t>(static_cast<std::size_t>(m.out) * ng, "grid zero points");
    m.ng_cap = ng;
  }
  const std::size_t tab = static_cast<std::size_t>(m.out) * ng;
  CUDA_CHECK(cudaMemcpyAsync(m.scales, scales, tab * sizeof(float), cudaMemcpyHostToDevice, m.stream));
  CUDA_CHECK(cudaMemcpyAsync(m.zeros, zeros, tab * sizeof(int32_t), cudaMemcpyHostToDevice, m.stream));
  CUDA_CHECK(cudaMemcpyAsync(m.gcol, gcol, count * sizeof(int32_t), cudaMemcpyHostToDevice, m.stream));
  quantize_block_kernel<<<(m.out + 127) / 128, 128, 0, m.stream>>>(m.W, m.out, m.in, m.U, i1, i2, m.scales, m.zeros,
                                                                    ng, m.gcol, bits, m.codes, m.err, m.B);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(codes, m.codes, static_cast<std::size_t>(m.out) * count, cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void GptqColumns::update_rest(int i1, int i2) {
  Impl& m = *impl_;
  if (i2 >= m.in) return;
  const double alpha = -1.0, beta = 1.0;
  // Row-major W[:, i2:] (out × (in − i2), ld in) −= Err (out × count, ld B) · U[i1:i2, i2:] (ld in);
  // column-major: Cᵀ = U_blockᵀ · Errᵀ.
  CUBLAS_CHECK(cublasDgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_N, m.in - i2, m.out, i2 - i1, &alpha,
                           m.U + static_cast<std::size_t>(i1) * m.in + i2, m.in, m.err, m.B, &beta, m.W + i2, m.in));
}

}  // namespace qsweep::cuda
