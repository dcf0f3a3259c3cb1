// device_comm.cc — NCCL communicators made from MPI ones, and the shared-GPU test.
#include "dist/device_comm.h"

#include <map>
#include <memory>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "dist/comm.h"

#ifdef QSWEEP_WITH_CUDA
#include <exception>

#include "qsweep/cuda/nccl_comm.h"
#endif

namespace qsweep {

bool distinct_devices(const std::vector<std::string>& hosts, const std::vector<int64_t>& ordinals) {
  QS_ASSERT(hosts.size() == ordinals.size(), "one host and one ordinal per rank");
  std::set<std::pair<std::string, int64_t>> seen;
  for (size_t r = 0; r < hosts.size(); ++r)
    if (!seen.insert({hosts[r], ordinals[r]}).second) return false;
  return true;
}

bool nccl_usable(const Comm& comm, int ordinal) {
#ifdef QSWEEP_WITH_CUDA
  if (comm.size() < 2) return false;
  static std::map<uintptr_t, bool> known;  // per communicator: the binding does not change
  auto it = known.find(comm.key());
  if (it != known.end()) return it->second;
  const bool ok = distinct_devices(comm.hostnames(), comm.allgatherv(std::vector<int64_t>{ordinal}));
  if (!ok && comm.rank() == 0)
    log_info("ranks share a GPU: device reductions go through MPI on host copies (NCCL refuses two ranks on one GPU)");
  known[comm.key()] = ok;
  return ok;
#else
  (void)comm, (void)ordinal;
  return false;
#endif
}

void nccl_allreduce_i128(const Comm& comm, int ordinal, void* device_data, size_t n) {
#ifdef QSWEEP_WITH_CUDA
  static std::map<uintptr_t, std::unique_ptr<cuda::NcclComm>> comms;
  auto it = comms.find(comm.key());
  if (it == comms.end()) {
    std::string error;
    std::vector<char> id;
    try {
      if (comm.rank() == 0) id = cuda::nccl_unique_id();
    } catch (const std::exception& e) {
      error = std::string("NCCL unique id: ") + e.what();
    }
    comm.agree_or_throw(error);
    uint64_t len = id.size();
    comm.bcast(&len, sizeof(len), 0);
    id.resize(len);
    comm.bcast(id.data(), len, 0);
    std::unique_ptr<cuda::NcclComm> c;
    try {
      c = std::make_unique<cuda::NcclComm>(ordinal, comm.size(), comm.rank(), id);
    } catch (const std::exception& e) {
      error = std::string("NCCL communicator: ") + e.what();
    }
    comm.agree_or_throw(error);
    it = comms.emplace(comm.key(), std::move(c)).first;
  }
  std::string error;
  try {
    it->second->allreduce_sum_i128(device_data, n);
  } catch (const std::exception& e) {
    error = std::string("NCCL allreduce: ") + e.what();
  }
  comm.agree_or_throw(error);
#else
  (void)comm, (void)ordinal, (void)device_data, (void)n;
  QS_ASSERT(false, "nccl_allreduce_i128 in a build without CUDA");
#endif
}

}  // namespace qsweep
