// staged_copy.cu — staged_copy.cuh: the pinned double buffer and the threaded host copies.
#include "staged_copy.cuh"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "check.cuh"

namespace qsweep::cuda {

void parallel_memcpy(void* dst, const void* src, std::size_t n) {
  if (n == 0) return;
  constexpr std::size_t kMinPerThread = std::size_t(4) << 20;
  const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t t = std::min<std::size_t>({8, hw, std::max<std::size_t>(1, n / kMinPerThread)});
  if (t <= 1) {
    std::memcpy(dst, src, n);
    return;
  }
  const std::size_t per = (n + t - 1) / t;
  auto part = [&](std::size_t k) {
    const std::size_t a = k * per, b = std::min(n, a + per);
    if (a < b) std::memcpy(static_cast<char*>(dst) + a, static_cast<const char*>(src) + a, b - a);
  };
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (std::size_t k = 1; k < t; ++k) pool.emplace_back(part, k);
  part(0);
  for (std::thread& th : pool) th.join();
}

void staged_round_trip(int ordinal, const void* src, void* dst, std::size_t bytes, std::size_t piece) {
  CUDA_CHECK(cudaSetDevice(ordinal));
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  void* d = nullptr;
  try {
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    detail::StagedCopy c(piece, piece / 4);
    c.to_device(d, src, bytes, s);
    c.to_host(dst, d, bytes, s);
  } catch (...) {
    if (d) cudaFree(d);
    cudaStreamDestroy(s);
    throw;
  }
  cudaFree(d);
  cudaStreamDestroy(s);
}

namespace detail {

StagedCopy::~StagedCopy() {
  for (int k = 0; k < 2; ++k) {
    if (done_[k]) {
      cudaEventSynchronize(done_[k]);  // no DMA may still read the buffer being freed
      cudaEventDestroy(done_[k]);
    }
    if (buf_[k]) cudaFreeHost(buf_[k]);
  }
}

bool StagedCopy::ready() {
  if (tried_) return ok_;
  tried_ = true;
  for (int k = 0; k < 2; ++k) {
    if (cudaMallocHost(&buf_[k], piece_) != cudaSuccess ||
        cudaEventCreateWithFlags(&done_[k], cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();  // not sticky: clear it, and copy the plain way from now on
      return ok_ = false;
    }
  }
  return ok_ = true;
}

void StagedCopy::to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
  if (bytes == 0) return;
  if (bytes < min_staged_ || !ready()) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaStreamSynchronize(s));  // pageable: the source must stay until the copy is done
    return;
  }
  for (std::size_t off = 0, i = 0; off < bytes; off += piece_, ++i) {
    const int k = static_cast<int>(i & 1);
    const std::size_t n = std::min(piece_, bytes - off);
    CUDA_CHECK(cudaEventSynchronize(done_[k]));  // buf_[k]'s previous DMA has finished reading it
    parallel_memcpy(buf_[k], static_cast<const char*>(src) + off, n);
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off, buf_[k], n, cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaEventRecord(done_[k], s));
  }
}

void StagedCopy::to_host(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
  if (bytes == 0) return;
  if (bytes < min_staged_ || !ready()) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    return;
  }
  const std::size_t pieces = (bytes + piece_ - 1) / piece_;
  auto dma = [&](std::size_t i) {  // piece i into buf_[i mod 2], after the stream's earlier work
    const int k = static_cast<int>(i & 1);
    const std::size_t off = i * piece_, n = std::min(piece_, bytes - off);
    CUDA_CHECK(cudaMemcpyAsync(buf_[k], static_cast<const char*>(src) + off, n, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaEventRecord(done_[k], s));
  };
  CUDA_CHECK(cudaEventSynchronize(done_[0]));  // a to_device's last DMA may still read the buffers
  CUDA_CHECK(cudaEventSynchronize(done_[1]));
  dma(0);
  for (std::size_t i = 0; i < pieces; ++i) {
    // buf_[(i+1) mod 2] was last emptied by piece i-1's host copy, which has returned.
    if (i + 1 < pieces) dma(i + 1);
    const int k = static_cast<int>(i & 1);
    const std::size_t off = i * piece_, n = std::min(piece_, bytes - off);
    CUDA_CHECK(cudaEventSynchronize(done_[k]));
    parallel_memcpy(static_cast<char*>(dst) + off, buf_[k], n);
  }
}

}  // namespace detail
}  // namespace qsweep::cuda
