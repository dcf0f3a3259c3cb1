// check.cuh — error-checking macros for CUDA runtime, cuBLAS and NCCL calls.
//
// Every fallible call in the backend goes through one of these so that a failure surfaces as a
// C++ exception (std::runtime_error "<file>:<line>: <call> failed: <error name>: <error string>")
// instead of a silently ignored status code or an abort; callers such as the test suite can then
// report or skip cleanly, e.g. on machines without a GPU.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <stdexcept>
#include <string>

namespace qsweep::cuda::detail {

[[noreturn]] inline void throw_error(const char* file, int line, const char* call,
                                     const std::string& what) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + what);
}

inline void check_cuda(cudaError_t status, const char* file, int line, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the (non-sticky) error so later calls start clean
  throw_error(file, line, call,
              std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status));
}

inline void check_cublas(cublasStatus_t status, const char* file, int line, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw_error(file, line, call,
              std::string(cublasGetStatusName(status)) + ": " + cublasGetStatusString(status));
}

inline void check_nccl(ncclResult_t status, const char* file, int line, const char* call) {
  if (status == ncclSuccess) return;
  throw_error(file, line, call, ncclGetErrorString(status));
}

}  // namespace qsweep::cuda::detail

#define CUDA_CHECK(expr) ::qsweep::cuda::detail::check_cuda((expr), __FILE__, __LINE__, #expr)
#define CUBLAS_CHECK(expr) ::qsweep::cuda::detail::check_cublas((expr), __FILE__, __LINE__, #expr)
#define NCCL_CHECK(expr) ::qsweep::cuda::detail::check_nccl((expr), __FILE__, __LINE__, #expr)

// After a kernel launch: catches bad launch configurations (and "no device") right away.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
