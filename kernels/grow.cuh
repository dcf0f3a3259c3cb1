// grow.cuh — a device array that grows to the largest request and is kept (the engines' scratch
// and resident weights), and `put`, a host-to-device copy into one on a stream. Allocation goes
// through device_alloc: out of memory names the buffer, the bytes and what to lower.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "check.cuh"
#include "device_alloc.cuh"

namespace qsweep::cuda::detail {

// A device array that grows on demand (contents are not kept across growth).
template <typename T>
class Grow {
 public:
  Grow() = default;
  ~Grow() {
    if (p_) cudaFree(p_);
  }
  Grow(const Grow&) = delete;
  Grow& operator=(const Grow&) = delete;
  // `hint`: what the user can lower when the device cannot hold it.
  T* get(std::size_t n, const char* what,
         const char* hint = "lower --batch or --calib-chunk, or --activation-budget-mb, or use more GPUs") {
    if (n <= cap_) return p_;
    if (p_) cudaFree(p_);
    p_ = nullptr;
    cap_ = 0;
    p_ = static_cast<T*>(device_alloc(n * sizeof(T), what, hint));
    cap_ = n;
    return p_;
  }
  T* data() const { return p_; }
  std::size_t bytes() const { return cap_ * sizeof(T); }

 private:
  T* p_ = nullptr;
  std::size_t cap_ = 0;
};

template <typename T>
T* put(Grow<T>& g, const T* host, std::size_t n, const char* what, cudaStream_t s) {
  if (!host || n == 0) return nullptr;
  T* d = g.get(n, what);
  CUDA_CHECK(cudaMemcpyAsync(d, host, n * sizeof(T), cudaMemcpyHostToDevice, s));
  return d;
}

}  // namespace qsweep::cuda::detail
