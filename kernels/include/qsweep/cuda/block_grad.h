// qsweep/cuda/block_grad.h — the CUDA twin of train/block_grad.h: one decoder block's training
// forward (keeping its tape on the device) and backward, fp32 (cuBLAS with TF32 off; bf16 GEMMs
// with BlockDims::bf16_gemm), with the Block-AP fake quantizer on any linear module. What Block-AP
// and the fisher score need on a GPU.
//
// Plain C++ (no CUDA types): train/block_pass.cc adapts it to BlockParams<float>. The parameters
// are uploaded by upload() (once per training step: they change every step) and stay resident;
// the effective (fake-quantized) weights are computed there on the device. forward() takes a host
// x and keeps every activation the backward needs on the device; backward() takes a host dy and
// writes host gradients of every parameter and of the input. Errors (CUDA, cuBLAS, out of memory
// naming the buffer and what to lower) throw std::runtime_error.
#pragma once

#include <cstdint>
#include <memory>

#include "qsweep/cuda/block_forward.h"

namespace qsweep::cuda {

// One linear module's place in its fused matrix (0 qkv, 1 o, 2 gate_up, 3 down: row0, out rows of
// `in` columns) and its quantizer (bits 0: none; scales, zeros [out, ⌈in/group⌉] host arrays).
struct LinearGradView {
  int matrix = 0, row0 = 0, out = 0, in = 0;
  int bits = 0, group = 0;
  const float* scales = nullptr;
  const float* zeros = nullptr;
};
constexpr int kGradLinears = 7;  // q, k, v, o, gate, up, down

// Host arrays of a block's gradients, shaped as its parameters (nullptr where a tensor is absent);
// scales[m], zeros[m] for each quantized module m.
struct BlockGradOut {
  float *input_norm = nullptr, *post_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  float *qkv = nullptr, *qkv_bias = nullptr, *o = nullptr, *o_bias = nullptr;
  float *gate_up = nullptr, *gate_up_bias = nullptr, *down = nullptr, *down_bias = nullptr;
  float* scales[kGradLinears] = {};
  float* zeros[kGradLinears] = {};
};

class BlockGrad {
 public:
  BlockGrad(const BlockDims& dims, int ordinal);
  ~BlockGrad();
  BlockGrad(const BlockGrad&) = delete;
  BlockGrad& operator=(const BlockGrad&) = delete;

  // The block's tensors and its modules' quantizers (w.q_norm / k_norm set: qwen3's q/k norms).
  void upload(const BlockWeightsView& w, const LinearGradView (&mods)[kGradLinears]);
  // RoPE table [seq_len, half] (cos, sin) for sequences of seq_len; kept per seq_len.
  void set_rope(int seq_len, int half, const float* cos, const float* sin);
  // x [n_seq·seq_len, hidden] host → the block's output in place; the tape stays on the device.
  void forward(float* x, int n_seq, int seq_len);
  // dy [rows, hidden] host: the gradients of the last forward's parameters into g (overwritten),
  // of its input into dx (host, may alias dy; nullptr skips the copy back).
  void backward(const float* dy, const BlockGradOut& g, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
