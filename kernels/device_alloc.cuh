// device_alloc.cuh — cudaMalloc that fails with the message a user can act on: out of memory says
// what the memory was for, how much was asked, how much the device had free, and which option to
// lower; any other failure (no device, a driver error) is the CUDA error with its file:line. Every
// device allocation of the backend goes through it.
#pragma once

#include <cuda_runtime.h>

#include "check.cuh"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace qsweep::cuda::detail {

inline void* device_alloc(std::size_t bytes, const std::string& what, const char* hint = "") {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, std::max<std::size_t>(bytes, 1));
  if (status == cudaSuccess) return p;
  // Not a shortage of memory (no device, a driver error): the CUDA error itself, with file:line.
  if (status != cudaErrorMemoryAllocation) check_cuda(status, __FILE__, __LINE__, "cudaMalloc");
  cudaGetLastError();
  std::size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  throw std::runtime_error("out of device memory: " + what + " needs " + std::to_string(bytes >> 20) + " MiB, " +
                           std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) + " MiB" +
                           (*hint ? std::string(" (") + hint + ")" : std::string()));
}

}  // namespace qsweep::cuda::detail
