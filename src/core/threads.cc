// threads.cc — OpenMP + OpenBLAS thread control.
#include "core/threads.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace qsweep {

int set_num_threads(int n) {
  n = std::max(1, n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

int num_threads() { return omp_get_max_threads(); }

int default_num_threads(int ranks_on_node) {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  return std::max<int>(1, static_cast<int>(cores) / std::max(1, ranks_on_node));
}

}  // namespace qsweep
