// task_pool.cc — the owner-computes task pool (see task_pool.h).
#include "dist/task_pool.h"

#include <string>

#include "core/error.h"
#include "stats/spectrum.h"

namespace qsweep {

std::vector<Bytes> run_distributed(const std::vector<double>& cost,
                                   const std::function<Bytes(size_t)>& task, const Comm& comm) {
  const std::vector<int> owner = lpt_assign(cost, comm.size());
  std::vector<Bytes> out(cost.size());
  std::string error;
  for (size_t k = 0; k < cost.size() && error.empty(); ++k) {
    if (owner[k] != comm.rank()) continue;
    try {
      out[k] = task(k);
    } catch (const Error& e) {
      error = e.what();
      if (error.empty()) error = "a quantization task failed (no message)";
    }
  }
  comm.agree_or_throw(error);
  for (size_t k = 0; k < cost.size(); ++k) {
    uint64_t n = out[k].b.size();
    comm.bcast(&n, sizeof(n), owner[k]);
    out[k].b.resize(n);
    comm.bcast(out[k].b.data(), n, owner[k]);
    out[k].pos = 0;
  }
  return out;
}

}  // namespace qsweep
