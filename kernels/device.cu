// device.cu — device discovery: how many CUDA devices there are and what they are.
//
// Used to decide at run time whether the CUDA path can run at all (tests skip, the CLI falls back
// to the CPU). Builds machines have the toolkit but no driver, where cudaGetDeviceCount fails
// (cudaErrorInsufficientDriver, 35); that and every other error is reported as "0 devices",
// never as an abort.
#include "qsweep/cuda/backend.h"

#include <cuda_runtime.h>

#include "device_alloc.cuh"

#include <cstdio>
#include <stdexcept>
#include <string>

namespace qsweep::cuda {

int device_count() noexcept {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear it so later runtime calls are not confused by it
    return 0;
  }
  return count < 0 ? 0 : count;
}

std::string device_summary() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("0 CUDA devices (cudaGetDeviceCount: ") + cudaGetErrorString(status) + ")";
  }
  if (count <= 0) return "0 CUDA devices";

  std::string out = std::to_string(count) + (count == 1 ? " CUDA device" : " CUDA devices");
  for (int i = 0; i < count; ++i) {
    out += i == 0 ? ": " : "; ";
    cudaDeviceProp prop{};
    const cudaError_t ps = cudaGetDeviceProperties(&prop, i);
    if (ps != cudaSuccess) {
      cudaGetLastError();
      out += "#" + std::to_string(i) + " (cudaGetDeviceProperties: " + cudaGetErrorString(ps) + ")";
      continue;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f GiB",
                  static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    out += "#" + std::to_string(i) + " " + prop.name + " (" + buf + ", compute capability " +
           std::to_string(prop.major) + "." + std::to_string(prop.minor) + ", " +
           std::to_string(prop.multiProcessorCount) + " SMs)";
  }
  return out;
}

void bind_device(int ordinal) {
  const cudaError_t status = cudaSetDevice(ordinal);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("cudaSetDevice(" + std::to_string(ordinal) + ") failed: " + cudaGetErrorString(status));
  }
}

std::string device_name(int ordinal) {
  cudaDeviceProp prop{};
  const cudaError_t ps = cudaGetDeviceProperties(&prop, ordinal);
  if (ps != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(ps);
  }
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s, %.1f GiB, compute capability %d.%d", prop.name,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor);
  return buf;
}

void* device_copy(const void* host, std::size_t bytes) {
  void* p = detail::device_alloc(bytes, "a test copy");
  const cudaError_t st = cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice);
  if (st != cudaSuccess) {
    cudaFree(p);
    throw std::runtime_error(std::string("cudaMemcpy to the device failed: ") + cudaGetErrorString(st));
  }
  return p;
}

void device_to_host(void* host, const void* device, std::size_t bytes) {
  const cudaError_t st = cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost);
  if (st != cudaSuccess) throw std::runtime_error(std::string("cudaMemcpy to the host failed: ") + cudaGetErrorString(st));
}

void device_free(void* p) { cudaFree(p); }

}  // namespace qsweep::cuda
