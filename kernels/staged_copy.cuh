// staged_copy.cuh — large copies between pageable host memory and the GPU through two pinned
// staging buffers, the host side of each piece copied by several threads.
//
// Why: a cudaMemcpy from pageable memory goes through the driver's own staging at one thread's
// memcpy speed; on the H200 node it moved the 1b preset's weights at 5.6 GB/s, 0.8-0.9 s of a
// 64-window evaluation (28% of it in bf16: README, GPU). Here piece i is copied into pinned buffer
// i mod 2 by up to 8 threads while the DMA of piece i-1 runs from the other buffer.
// to_device returns once the host array has been read (it may change then; the last DMA may still
// run, ordered before later work on the stream); to_host returns once dst is complete. Copies under
// 1 MiB, and every copy when pinned memory cannot be had, are plain cudaMemcpyAsync calls (the
// same bytes either way). One object per stream; not thread-safe.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "qsweep/cuda/host_copy.h"

namespace qsweep::cuda::detail {

class StagedCopy {
 public:
  // piece: bytes per staging buffer; copies under min_staged bytes go the plain way.
  explicit StagedCopy(std::size_t piece = std::size_t(64) << 20, std::size_t min_staged = std::size_t(1) << 20)
      : piece_(piece), min_staged_(min_staged) {}
  ~StagedCopy();
  StagedCopy(const StagedCopy&) = delete;
  StagedCopy& operator=(const StagedCopy&) = delete;

  void to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t s);
  void to_host(void* dst, const void* src, std::size_t bytes, cudaStream_t s);

 private:
  std::size_t piece_, min_staged_;
  bool ready();  // allocates the pinned buffers and events once; false: plain copies from then on
  void* buf_[2] = {nullptr, nullptr};
  cudaEvent_t done_[2] = {nullptr, nullptr};  // the DMA that last used buf_[k]
  bool tried_ = false, ok_ = false;
};

}  // namespace qsweep::cuda::detail
