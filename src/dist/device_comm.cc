// device_comm.cc — NCCL communicators made from MPI ones, and the shared-GPU test.
#include "dist/device_comm.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "core/device.h"
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

double bytes_sharing_device(const std::vector<std::string>& hosts, const std::vector<int64_t>& ordinals,
                            const std::vector<double>& bytes, int rank) {
  QS_ASSERT(hosts.size() == ordinals.size() && bytes.size() == hosts.size() && rank >= 0 &&
                rank < static_cast<int>(hosts.size()), "one host, ordinal and size per rank");
  double total = 0;
  for (size_t r = 0; r < hosts.size(); ++r)
    if (hosts[r] == hosts[static_cast<size_t>(rank)] && ordinals[r] == ordinals[static_cast<size_t>(rank)]) total += bytes[r];
  return total;
}

double bytes_on_device(const Comm& comm, int ordinal, double mine) {
  if (comm.size() == 1) return mine;
  return bytes_sharing_device(comm.hostnames(), comm.allgatherv(std::vector<int64_t>{ordinal}),
                              comm.allgatherv(std::vector<double>{mine}), comm.rank());
}

int64_t device_budget_share(const Comm& comm, int64_t budget) {
  const ComputeDevice& d = current_device();
  if (d.kind != DeviceKind::Cuda) return budget;
  const double sharing = bytes_on_device(comm, d.ordinal, 1.0);
  return static_cast<int64_t>(static_cast<double>(budget) / std::max(1.0, sharing));
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

double nccl_timeout_seconds() {
  const char* v = std::getenv("QSWEEP_NCCL_TIMEOUT_S");
  if (!v || !*v) return 300;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  QS_CHECK(end && *end == '\0' && t > 0, "QSWEEP_NCCL_TIMEOUT_S=" << v << ": expected a positive number of seconds");
  return t;
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
    const double timeout = nccl_timeout_seconds();  // the same environment on every rank
    try {
      c = std::make_unique<cuda::NcclComm>(ordinal, comm.size(), comm.rank(), id, timeout);
    } catch (const std::exception& e) {
      error = std::string("NCCL communicator: ") + e.what();
    }
    comm.agree_or_throw(error);
    it = comms.emplace(comm.key(), std::move(c)).first;
  }
  std::string error;
  bool agreed_failure = false;  // an error agreed before a collective: already thrown on every rank
  try {
    it->second->allreduce_sum_i128(device_data, n, [&](const std::string& e) {
      try {
        comm.agree_or_throw(e.empty() ? e : "NCCL allreduce: " + e);
      } catch (...) {
        agreed_failure = true;
        throw;
      }
    });
  } catch (const std::exception& e) {
    if (agreed_failure) throw;  // before any collective: every rank threw alike, the communicator is intact
    error = std::string("NCCL allreduce: ") + e.what();
  }
  try {
    comm.agree_or_throw(error);
  } catch (...) {  // a failure inside NCCL on some rank: every rank drops the communicator alike
    comms.erase(it);
    throw;
  }
#else
  (void)comm, (void)ordinal, (void)device_data, (void)n;
  QS_ASSERT(false, "nccl_allreduce_i128 in a build without CUDA");
#endif
}

}  // namespace qsweep
