// qsweep/cuda/nccl_comm.h — NCCL for reductions of device data (kernels/nccl_comm.cu). The
// communicator is made from a unique id that the caller broadcasts over MPI (dist/device_comm.cc);
// NCCL refuses two ranks on one GPU, which the caller checks first (and then reduces host copies
// through MPI instead, with the same exact arithmetic).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace qsweep::cuda {

// A fresh ncclUniqueId's bytes (on one rank; broadcast them to the others).
std::vector<char> nccl_unique_id();

class NcclComm {
 public:
  // Collective over the nranks callers (each on its own device `ordinal`).
  NcclComm(int ordinal, int nranks, int rank, const std::vector<char>& id);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // In place, on every rank: the sum over ranks of n 128-bit two's-complement integers in device
  // memory, exact and independent of NCCL's order: each is split into four 32-bit limbs held in
  // uint64 (no sum of fewer than 2^32 ranks overflows), summed by ncclAllReduce, then carried
  // back into 128 bits (mod 2^128, as integer addition wraps on the CPU).
  void allreduce_sum_i128(void* device_data, std::size_t n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
