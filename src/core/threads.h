// threads.h — one place that sets how many threads a rank uses, for OpenMP loops and OpenBLAS
// alike. Default: the cores of this node divided by the ranks on this node (so 2 ranks on 2
// cores run 1 thread each instead of oversubscribing), overridden by --threads or
// OMP_NUM_THREADS.
#pragma once

namespace qsweep {

// Applies `n` threads to OpenMP and OpenBLAS; returns n.
int set_num_threads(int n);
int num_threads();
// Threads a rank should use when the user gave no number.
int default_num_threads(int ranks_on_node);

}  // namespace qsweep
