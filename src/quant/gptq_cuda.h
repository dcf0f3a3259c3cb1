// gptq_cuda.h — GPTQ's factorisation and column loop on this process's GPU (kernels/gptq.cu),
// called by gptq_quantize when the device is CUDA. Everything before (H, dead columns, act-order
// permutation, static grids) stays in quant/gptq.cc, shared with the CPU path.
#pragma once
#include <vector>

#include "quant/gptq.h"

namespace qsweep {

// W [out, in] and H [in, in] as gptq.cc prepared them (permuted under act-order, `perm` the
// permutation); fills q's codes (original column order) and, without act-order, its group grids.
// Returns the damping fraction used. Throws qsweep::Error for CUDA failures and a Hessian that
// no damping makes positive definite (the CPU's message).
double gptq_columns_cuda(int ordinal, const std::vector<double>& W, const std::vector<double>& H, int out, int in,
                         double mean_diag, const std::vector<int>& perm, const GridSpec& grid, const GptqOptions& opt,
                         QuantizedLinear& q);

}  // namespace qsweep
