// qsweep/cuda/gptq.h — GPTQ's heavy steps on a GPU (kernels/gptq.cu), driven by
// quant/gptq_cuda.cc with the same algorithm as the CPU's quant/gptq.cc: the damped inverse
// Cholesky factor (cuSOLVER dpotrf/dpotri/dpotrf, fp64), the column-by-column quantization of a
// block with the error propagated inside it (a thread per row, the grid arithmetic in fp32 as on
// the CPU) and the block's trailing update (cuBLAS dgemm). Plain C++; errors throw
// std::runtime_error naming the call (allocations: the bytes asked for and free).
#pragma once

#include <cstdint>
#include <memory>

namespace qsweep::cuda {

class GptqColumns {
 public:
  // W [out, in] row-major fp64 stays on device `ordinal`; blocks of at most `block` columns.
  GptqColumns(int ordinal, int out, int in, int block);
  ~GptqColumns();
  GptqColumns(const GptqColumns&) = delete;
  GptqColumns& operator=(const GptqColumns&) = delete;

  // U = the upper Cholesky factor of (H + λI)⁻¹, H row-major [in, in]; false when a
  // factorisation fails (the caller raises λ and asks again).
  bool factor(const double* H, double lambda);
  void upload_weights(const double* W);
  // W[:, c0 : c0 + n] as host rows [out, n] (a group's columns, for its grid).
  void download_columns(int c0, int n, double* rows);
  // Quantizes columns [i1, i2): column i1 + i uses group gcol[i] of the grid tables scales/zeros
  // [out, ng] (host); codes [out, i2 − i1] (host) receive the codes.
  void quantize_block(int i1, int i2, const float* scales, const int32_t* zeros, int ng, const int32_t* gcol,
                      int bits, uint8_t* codes);
  // W[:, i2:] −= Err · U[i1:i2, i2:] (Err: the last quantize_block's scaled errors).
  void update_rest(int i1, int i2);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
