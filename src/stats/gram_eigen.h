// gram_eigen.h — the empirical spectral density of a weight matrix: eigenvalues of the Gram
// matrix on its smaller side (WᵀW when in <= out, else WWᵀ), in double precision: a dsyrk Gram
// product over row chunks (so a 128k x 2k lm_head never needs a full double copy) and LAPACK's
// dsyevd. Single-threaded by design: callers run one layer per thread, which keeps results
// independent of the thread and rank count.
#pragma once
#include <cstdint>
#include <vector>

namespace qsweep {

// Eigenvalues of the smaller Gram matrix of w [out, in] (row-major), sorted descending, all of
// them (including zero and tiny negative round-off values).
std::vector<double> gram_eigenvalues(const float* w, int64_t out, int64_t in);

// Multiply-adds of gram_eigenvalues, for scheduling: Gram product plus eigensolver.
double gram_eigen_cost(int64_t out, int64_t in);

}  // namespace qsweep
