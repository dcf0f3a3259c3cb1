// qsweep/cuda/block_forward.h — the CUDA twin of model/forward.h's LlamaForward: one decoder
// block's forward pass and the head, on one GPU, fp32 (cuBLAS with TF32 off; BlockDims::bf16_gemm:
// the GEMMs on bf16 tensor cores; BlockDims::tf32x3_gemm: fp32 emulated on TF32 tensor cores).
//
// Plain C++ (no CUDA types): model/forward_cuda.cc adapts it to LlamaForward's interface. A
// block's weights are uploaded once (upload_block) and stay resident until the next upload, as
// do the head's (upload_head, two slots: the evaluated head and the full-precision reference of
// KL runs). Activations come and go as host arrays per call; the scratch of the largest batch
// seen stays allocated. Errors (CUDA, cuBLAS, out of memory) throw std::runtime_error with the
// call, the CUDA error and, for allocations, the bytes asked for and free on the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace qsweep::cuda {

struct BlockDims {
  int hidden = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, inter = 0;
  int sliding_window = 0;  // 0: unlimited
  float eps = 1e-5f;
  bool residual_scaled = false;  // MiniCPM: branches added × residual_scale
  float residual_scale = 1.0f;
  bool bf16_gemm = false;  // --compute-dtype bf16: GEMMs on bf16 tensor cores, fp32 accumulation
  // --compute-dtype tf32x3: the linears' and the head's GEMMs as fp32 emulated with three TF32
  // products on the tensor cores (qsweep/cuda/tf32_split.h); attention's stay SGEMM (unless flash_attention).
  bool tf32x3_gemm = false;
  // With bf16_gemm or tf32x3_gemm: unpacked sequences' attention through the fused kernel
  // (flash_attention.cuh) when no entropy is asked for and the head dimension and device allow;
  // else the GEMM path.
  bool flash_attention = false;
};

// Host arrays of one block (model/llama_weights.h BlockWeights' layout); nullptr = absent.
struct BlockWeightsView {
  const float *input_norm = nullptr, *post_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  const float *qkv = nullptr, *qkv_bias = nullptr, *o = nullptr, *o_bias = nullptr;
  const float *gate_up = nullptr, *gate_up_bias = nullptr, *down = nullptr, *down_bias = nullptr;
};

// Packed sequences (model/forward.h SeqPacking), host arrays of [rows]; nullptr = unpacked.
struct RowPacking {
  const int32_t* positions = nullptr;
  const int32_t* prefix_end = nullptr;
  const int32_t* branch_begin = nullptr;
};

// The inputs of the linear groups, handed to the caller (calibration statistics) as the device
// arrays they are, valid during the call, with `host()`, which copies one to host memory on its
// first call (observers that compute on the device never pay for the copy): QKV and GateUp are
// [rows, hidden], O [rows, q_dim], Down [rows, inter].
enum class Tap { QKV, O, GateUp, Down };
using HostCopy = std::function<const float*()>;
using TapFn = std::function<void(Tap, const float* device, int64_t rows, int cols, const HostCopy& host)>;

class BlockForward {
 public:
  BlockForward(const BlockDims& dims, int ordinal);
  ~BlockForward();
  BlockForward(const BlockForward&) = delete;
  BlockForward& operator=(const BlockForward&) = delete;

  void upload_block(const BlockWeightsView& w);
  // RoPE table [seq_len, half] (cos, sin) for sequences of seq_len; kept per seq_len.
  void set_rope(int seq_len, int half, const float* cos, const float* sin);
  // x [n_seq * seq_len, hidden] host, updated in place to the block's output. `entropy`, when not
  // null, receives [n_seq * n_heads] Σ over query rows of each head's attention entropy (nats).
  void run(float* x, int n_seq, int seq_len, const RowPacking* packing, const TapFn* tap, double* entropy);
  // The same on hidden states already in device memory (a region below), in place, no transfer.
  void run_device(float* x_device, int n_seq, int seq_len, const RowPacking* packing, const TapFn* tap,
                  double* entropy);

  // Hidden states kept on the device across blocks: a device copy of n host floats, its copy back,
  // its release; whether n device floats are all finite (a flag kernel).
  float* region_create(const float* host, std::size_t n);
  void region_download(float* host, const float* device, std::size_t n);
  void region_free(float* device);
  // A device copy of n device floats in the engine's scratch (a block input kept for the guard).
  float* keep_copy(const float* device, std::size_t n);
  bool all_finite(const float* device, std::size_t n);
  // dst = src, n floats, each in host or device memory (cudaMemcpyDefault), on the engine's stream.
  void copy(float* dst, const float* src, std::size_t n);

  // Head slot 0 or 1: final norm [hidden], lm_head [vocab, hidden], logits' input ÷ divisor (1: none).
  void upload_head(int slot, const float* norm, const float* lm_head, int vocab, float divisor);
  // x [n, hidden] host (final hidden states): logits [n, vocab] host, or the NLL of targets[n].
  void head_logits(int slot, const float* x, int64_t n, float* logits);
  void head_nll(int slot, const float* x, int64_t n, const int32_t* targets, double* nll);
  // Both heads on their rows (slot on x, slot_ref on x_ref, [n, hidden] host each): per row
  // KL(ref ‖ slot), whether the argmaxes agree, and the NLL of targets under each; the logits
  // never leave the device.
  void head_kl(int slot, const float* x, int slot_ref, const float* x_ref, int64_t n, const int32_t* targets, double* kl,
               uint8_t* top1, double* nll, double* nll_base);


 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
