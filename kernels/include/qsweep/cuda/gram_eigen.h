// qsweep/cuda/gram_eigen.h — the CUDA twin of stats/gram_eigen.h (kernels/gram_eigen.cu): the
// eigenvalues of a weight matrix's smaller Gram matrix in fp64, cuBLAS dsyrk over the same fixed
// row chunks as the CPU, cuSOLVER dsyevd without vectors. Plain C++; throws std::runtime_error.
#pragma once

#include <cstdint>
#include <vector>

namespace qsweep::cuda {

// w [out, in] row-major fp32 host; eigenvalues sorted descending, on device `ordinal`.
std::vector<double> gram_eigenvalues(int ordinal, const float* w, int64_t out, int64_t in);

}  // namespace qsweep::cuda
