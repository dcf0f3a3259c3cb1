// qsweep/cuda/rtn.h — round-to-nearest on quant/grid.h's grid, on the GPU (kernels/rtn.cu): the
// twin of quant/grid.cc quantize_rtn with the CPU's fp32 operations (kernels/grid.cuh), so codes,
// scales and zeros are the CPU's bit for bit. Plain C++; throws std::runtime_error.
#pragma once

#include <cstdint>

namespace qsweep::cuda {

// w [out, in] row-major host; groups of group_len consecutive columns (the last may be shorter).
// Writes codes [out, in], scales and zeros [out, groups] (host).
void quantize_rtn(int ordinal, const float* w, int out, int in, int group_len, int bits, bool sym, uint8_t* codes,
                  float* scales, int32_t* zeros);

}  // namespace qsweep::cuda
