// exact_gram.h — Σxxᵀ accumulated exactly, so that its total does not depend on how the
// calibration chunks are spread over ranks, and one accumulator per input replaces the per-chunk
// partials (whose number grew with --n-calib: 640 MB each at hidden 2048 / FFN 8192).
//
// Each chunk's contribution xᵀx is computed in fp64 by a dgemm per fixed 64-column tile of the
// upper triangle (the same call whatever the thread or rank count; the lower triangle is its
// mirror, so half the work and half the memory), then cut to a fixed-point grid of 2^-64 (truncated
// toward zero; only |v| < 2^-12 loses bits, at most 5.4e-20 absolute) and added into a 128-bit
// two's-complement integer per element. Integer addition is exact and associative, so chunks can
// be added in any order and ranks combined by a plain allreduce: the result is bit-identical for
// any rank count. to_double() rounds the exact total to the nearest double once. The cost: 16
// bytes per stored element (the upper triangle: about 8·C² bytes in all, as much as one fp64
// C × C partial), one accumulator instead of one partial per chunk. An entry of
// a chunk's xᵀx of magnitude ≥ 2^62 (4.6e18) or non-finite is recorded and reported by check().
//
// On a GPU (add_device), each chunk's xᵀx is computed and accumulated on the device in the same
// integers (qsweep/cuda/exact_gram.h) and drained into this accumulator before the agreement and
// the allreduce, so everything after stays one code path.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "dist/comm.h"
#include "stats/fixed_point.h"

namespace qsweep {

class BlockBuffers;

class ExactGram {
 public:
  // buffers (optional): where to_double's total comes from (stats/block_buffers.h).
  explicit ExactGram(int channels, BlockBuffers* buffers = nullptr);
  ~ExactGram();
  ExactGram(ExactGram&&) noexcept;
  ExactGram& operator=(ExactGram&&) noexcept;
  int channels() const { return c_; }
  // acc += xᵀx for x [rows, channels] (fp32).
  void add(const float* x, int64_t rows);
  // The same for x in the memory of CUDA device `ordinal`, accumulated there (CUDA builds only).
  void add_device(const float* x_device, int64_t rows, int ordinal);
  // Collective: the sum over ranks, in place on every rank. Device accumulators are summed on the
  // devices through NCCL when every rank has a GPU of its own (dist/device_comm.h), else drained
  // and summed through MPI; both are exact, so the bits are the same.
  void allreduce(const Comm& comm);
  // Collective: agrees on the worst input any rank met (0 fine, 1 non-finite, 2 out of range).
  int agree_status(const Comm& comm);
  // The total rounded to nearest; non-finite input makes the diagonal NaN (so callers' finite
  // checks name the layer).
  std::vector<double> to_double(int status) const;
  size_t bytes() const { return acc_.size() * sizeof(acc_[0]); }

 private:
  void drain_device();  // adds the device's total (if any) into acc_
  struct Device;
  int c_;
  int status_ = 0;
  bool host_added_ = false;  // add() ran: acc_ holds host sums (the NCCL path needs them all on devices)
  bool acc_zero_ = true;     // acc_ is all zeros (nothing added or drained into it yet)
  std::vector<unsigned __int128> acc_;
  BlockBuffers* buffers_ = nullptr;
  std::unique_ptr<Device> device_;
};

// The way back from the fixed-point grid (stats/fixed_point.h fixed_from_double, exposed for
// tests): the nearest double to an integer total times 2^-64.
double fixed_to_double(unsigned __int128 t);

}  // namespace qsweep
