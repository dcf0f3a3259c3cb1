// nccl_info.cu — NCCL version query.
//
// The collectives themselves are in nccl_comm.cu; this query proves the library is linked and
// loadable, and ncclGetVersion needs neither a GPU nor a driver.
#include "qsweep/cuda/backend.h"

#include "check.cuh"

namespace qsweep::cuda {

int nccl_version() {
  int version = 0;
  NCCL_CHECK(ncclGetVersion(&version));
  return version;
}

}  // namespace qsweep::cuda
