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

// Σ of bytes[r] over the ranks r on the same host and device ordinal as rank `rank` (pure; tested).
double bytes_sharing_device(const std::vector<std::string>& hosts, const std::vector<int64_t>& ordinals,
                            const std::vector<double>& bytes, int rank);
// Collective: what the ranks bound to this rank's GPU `ordinal` ask for together (a per-device
// budget's test: --activation-budget-mb applies per device).
double bytes_on_device(const Comm& comm, int ordinal, double mine);

// The share of a per-device budget (--activation-budget-mb) this rank may fill: budget ÷ the
// ranks bound to its GPU on a GPU; the budget itself on the CPU (a per-rank budget there).
// Collective when this process's device is a GPU (every rank of a run has the same kind).
int64_t device_budget_share(const Comm& comm, int64_t budget);

// Collective: whether the NCCL path can run on `comm` — a CUDA build, more than one rank, and every
// rank on its own GPU (`ordinal` is this rank's). The same answer on every rank.
bool nccl_usable(const Comm& comm, int ordinal);

// Collective, when nccl_usable: the exact sum over ranks of n 128-bit two's-complement integers
// in the memory of device `ordinal`, in place on every rank. The communicator is made once per
// `comm` (unique id broadcast over MPI). No rank is left waiting: failures before each NCCL
// collective are agreed over MPI so no rank enters one alone, and inside one every rank polls a
// non-blocking communicator against QSWEEP_NCCL_TIMEOUT_S (default 300 s; after the agreement all
// ranks enter within microseconds, so only a dead or stuck peer reaches it), aborts it on an
// error or the deadline, and the ranks then agree on the error (all drop the communicator).
void nccl_allreduce_i128(const Comm& comm, int ordinal, void* device_data, size_t n);

// QSWEEP_NCCL_TIMEOUT_S, checked (a positive number), or 300.
double nccl_timeout_seconds();

}  // namespace qsweep
