// nccl_info.cu — NCCL version query.
//
// NCCL will carry the multi-GPU collectives (sharded calibration, all-reduce of statistics).
// For now this only proves the library is really linked and loadable; ncclGetVersion needs
// neither a GPU nor a driver.
#include "qsweep/cuda/backend.h"

#include "check.cuh"

namespace qsweep::cuda {

int nccl_version() {
  int version = 0;
  NCCL_CHECK(ncclGetVersion(&version));
  return version;
}

}  // namespace qsweep::cuda
