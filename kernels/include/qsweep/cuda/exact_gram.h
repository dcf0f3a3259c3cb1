// qsweep/cuda/exact_gram.h — the device half of stats/exact_gram.h (kernels/exact_gram.cu): each
// chunk's xᵀx in fp64 by one cuBLAS dgemm per 64-column tile of the upper triangle (the CPU's
// tiling), cut to the same 2^-64 fixed-point grid (truncated toward zero) and added into 128-bit
// two's-complement integers on the GPU, in ExactGram's packed layout. Integer sums are exact, so
// the order of chunks and ranks does not matter; drain() adds the device total into the host
// accumulator, whose MPI allreduce and rounding are the CPU's. Plain C++; throws std::runtime_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace qsweep::cuda {

class GramAccumulator {
 public:
  // `packed`: the accumulator's element count (ExactGram's layout for `channels`), zeroed.
  GramAccumulator(int ordinal, int channels, std::size_t packed);
  ~GramAccumulator();
  GramAccumulator(const GramAccumulator&) = delete;
  GramAccumulator& operator=(const GramAccumulator&) = delete;

  // acc += xᵀx for x [rows, channels] fp32 in device memory (synchronous).
  void add(const float* x_device, int64_t rows);
  // 0 fine, 1 a non-finite entry met, 2 an entry of magnitude ≥ 2^62 met (ExactGram's codes).
  int status() const;
  // acc_host[i] += device total[i] (16-byte little-endian integers, wrapping), device zeroed.
  // host_is_zero: acc_host holds zeros, so the total is copied there directly (no scratch copy).
  void drain(void* acc_host, bool host_is_zero = false);
  // The device accumulator itself ([packed] 128-bit integers), for a device reduction (NCCL).
  void* device_data();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
