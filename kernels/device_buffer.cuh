// device_buffer.cuh — RAII owner of a cudaMalloc'd array plus host<->device copies.
//
// The host-pointer wrappers allocate several device arrays per call and any step may throw;
// owning them in this type guarantees they are freed on every path without try/catch clutter.
#pragma once

#include "check.cuh"
#include "device_alloc.cuh"

#include <cstddef>
#include <string>

namespace qsweep::cuda::detail {

template <typename T>
class DeviceBuffer {
 public:
  // Through device_alloc: out of memory names `what`, the sizes and `hint` (the option to lower).
  explicit DeviceBuffer(std::size_t count, const std::string& what = "a kernel's buffer", const char* hint = "")
      : count_(count) {
    if (count_ > 0) ptr_ = static_cast<T*>(device_alloc(bytes(), what, hint));
  }
  // Allocates `count` elements and copies them from host memory.
  DeviceBuffer(const T* host, std::size_t count, const std::string& what = "a kernel's buffer", const char* hint = "")
      : DeviceBuffer(count, what, hint) {
    upload(host);
  }

  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);  // never throw from a destructor
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return count_ * sizeof(T); }

  void upload(const T* host) {
    if (count_ > 0) CUDA_CHECK(cudaMemcpy(ptr_, host, bytes(), cudaMemcpyHostToDevice));
  }
  // Synchronous: also surfaces errors from kernels launched earlier on the default stream.
  void download(T* host) const {
    if (count_ > 0) CUDA_CHECK(cudaMemcpy(host, ptr_, bytes(), cudaMemcpyDeviceToHost));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

// Grid size for a grid-stride loop over n elements: enough blocks to cover n, capped so huge n
// reuses threads instead of requesting an enormous grid.
inline unsigned grid_for(std::size_t n, unsigned block) {
  constexpr std::size_t kMaxBlocks = 65535;
  std::size_t blocks = (n + block - 1) / block;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks == 0) blocks = 1;
  return static_cast<unsigned>(blocks);
}

}  // namespace qsweep::cuda::detail
