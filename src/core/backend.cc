// backend.cc — backend discovery (the CUDA part compiles only with QSWEEP_WITH_CUDA).
#include "core/backend.h"

#include <cblas.h>

#include "core/threads.h"

#ifdef QSWEEP_WITH_CUDA
#include "qsweep/cuda/backend.h"
#endif

namespace qsweep {

bool built_with_cuda() {
#ifdef QSWEEP_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef QSWEEP_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::string backend_summary() {
  std::string s = "cpu (" + std::string(openblas_get_config()) + ", " +
                  std::to_string(num_threads()) + " threads)";
#ifdef QSWEEP_WITH_CUDA
  s += "; cuda build: " + cuda::device_summary() + " (the forward pass runs on the CPU backend)";
#endif
  return s;
}

}  // namespace qsweep
