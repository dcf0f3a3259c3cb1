// device_comm.h — reductions of device data across ranks (issue 12): through NCCL when every rank
// of the communicator has a GPU of its own; NCCL refuses two ranks on one GPU, so when ranks share
// one (or the build has no CUDA) callers reduce host copies through MPI with the same exact
// arithmetic (stats/exact_gram.h is the user: its 128-bit integer sums give the same bits either
// way, and for any rank count).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

class Comm;

// Whether no two ranks share a device: hosts[r] and ordinals[r] per rank (pure; tested).
bool distinct_devices(const std::vector<std::string>& hosts, const std::vector<int64_t>& ordinals);

// Collective: whether the NCCL path can run on `comm` — a CUDA build, more than one rank, and every
// rank on its own GPU (`ordinal` is this rank's). The same answer on every rank.
bool nccl_usable(const Comm& comm, int ordinal);

// Collective, when nccl_usable: the exact sum over ranks of n 128-bit two's-complement integers
// in the memory of device `ordinal`, in place on every rank. The communicator is made once per
// `comm` (unique id broadcast over MPI); failures before a collective are agreed over MPI so no
// rank enters one alone. Not covered: a failure inside an NCCL call on one rank can leave the
// others waiting until the job's time limit (README: GPU).
void nccl_allreduce_i128(const Comm& comm, int ordinal, void* device_data, size_t n);

}  // namespace qsweep
