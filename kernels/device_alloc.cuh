// device_alloc.cuh — cudaMalloc that fails with the message a user can act on: what the memory was
// for, how much was asked, how much the device had free, and which option to lower. Every device
// allocation of the backend goes through it.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace qsweep::cuda::detail {

inline void* device_alloc(std::size_t bytes, const std::string& what, const char* hint = "") {
  void* p = nullptr;
  if (cudaMalloc(&p, std::max<std::size_t>(bytes, 1)) == cudaSuccess) return p;
  cudaGetLastError();
  std::size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  throw std::runtime_error("out of device memory: " + what + " needs " + std::to_string(bytes >> 20) + " MiB, " +
                           std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) + " MiB" +
                           (*hint ? std::string(" (") + hint + ")" : std::string()));
}

}  // namespace qsweep::cuda::detail
