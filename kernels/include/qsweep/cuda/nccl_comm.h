// qsweep/cuda/nccl_comm.h — NCCL for reductions of device data (kernels/nccl_comm.cu). The
// communicator is made from a unique id that the caller broadcasts over MPI (dist/device_comm.cc);
// NCCL refuses two ranks on one GPU, which the caller checks first (and then reduces host copies
// through MPI instead, with the same exact arithmetic).
//
// No rank waits forever in a collective (issue 12, the reliability issue's rank-failure rule): the
// communicator is non-blocking; everything that can fail before an ncclAllReduce (the limb split,
// its launch) is checked and agreed over MPI by the caller's `agree` before any rank enters it; and
// each NCCL step is polled against `timeout_s` — an asynchronous NCCL error or the deadline
// aborts the communicator (ncclCommAbort) and throws, so the rank reaches the caller's MPI
// agreement instead of hanging.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qsweep::cuda {

// A fresh ncclUniqueId's bytes (on one rank; broadcast them to the others).
std::vector<char> nccl_unique_id();

class NcclComm {
 public:
  // Collective over the nranks callers (each on its own device `ordinal`); throws when NCCL
  // reports an error or the initialisation is not complete after timeout_s seconds.
  NcclComm(int ordinal, int nranks, int rank, const std::vector<char>& id, double timeout_s);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // In place, on every rank: the sum over ranks of n 128-bit two's-complement integers in device
  // memory, exact and independent of NCCL's order: each is split into four 32-bit limbs held in
  // uint64 (no sum of fewer than 2^32 ranks overflows), summed by ncclAllReduce, then carried
  // back into 128 bits (mod 2^128, as integer addition wraps on the CPU). Before each slice's
  // ncclAllReduce, agree(error) is called on every rank with this rank's error ("" when the slice
  // is ready) and must throw on every rank when any rank has one. After a failure inside NCCL the
  // communicator is aborted and broken() is true: make a new one.
  using Agree = std::function<void(const std::string& error)>;
  void allreduce_sum_i128(void* device_data, std::size_t n, const Agree& agree);
  bool broken() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
