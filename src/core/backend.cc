// backend.cc — backend discovery (the CUDA part compiles only with QSWEEP_WITH_CUDA).
#include "core/backend.h"

#include <cblas.h>

#include "core/blas_kernels.h"
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
  // openblas_get_config() reads "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... Cooperlake MAX_THREADS=64":
  // keep the version, name the kernels in use once.
  std::string config = openblas_get_config(), version = config;
  const size_t sp = config.find(' ', config.find(' ') + 1);
  if (sp != std::string::npos) version = config.substr(0, sp);
  std::string s = "cpu (" + version + ", kernels " + blas_corename() + ", " + std::to_string(num_threads()) + " threads)";
#ifdef QSWEEP_WITH_CUDA
  s += "; cuda build: " + cuda::device_summary();
#endif
  return s;
}

}  // namespace qsweep
