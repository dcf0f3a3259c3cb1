// forward.h — the Llama-family decoder forward pass (fp32 compute), one decoder block at a time
// over a batch of equal-length sequences: LlamaForward on the CPU (OpenBLAS), and, in CUDA builds,
// its twin on a GPU (model/forward_cuda.cc over kernels/block_forward.cu). Stages get theirs from
// make_forward(), which follows this process's device (core/device.h).
//
// This is the seam the later stages use: run_block() takes any BlockWeights (full precision or
// with quantized modules substituted through BlockWeights::set_linear) and reports the input of
// every linear module to an optional LinearObserver — the calibration stage accumulates its
// activation statistics there. Activations are row-major [n_seq * seq_len, hidden].
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/llama_weights.h"
#include "model/rope.h"

namespace qsweep {

// The input matrix shared by one or more linear modules of a block (q/k/v share theirs, as do
// gate/up). x is [rows, cols] row-major and valid only during the callback; on a GPU it is
// nullptr when the observer said it does not want a host copy (wants_host_input).
struct LinearInput {
  int block;
  const Linear* modules;
  int n_modules;
  const float* x;
  int64_t rows;
  int cols;
  // On a GPU: the same matrix in device memory (valid during the callback) and its device, so
  // that an observer may compute on it there (ExactGram::add_device); nullptr on the CPU.
  const float* x_device = nullptr;
  int device = -1;
};

// y[M,N] = x[M,K] · w[N,K]^T + beta · y (row-major, leading dimension ldy), tiled so that the
// result does not depend on the thread count (what every linear of the forward pass uses).
// The tiles: ops/gemm.h (gemm_tiled, gemm_tile).
void gemm_xwt(const float* x, const float* w, float* y, int64_t M, int N, int K, float beta, int64_t ldy);

class LinearObserver {
 public:
  virtual ~LinearObserver() = default;
  virtual void on_linear_input(const LinearInput& in) = 0;
  // On a device forward: whether the input of the group led by `first` must be copied to host
  // memory for on_linear_input (false: LinearInput::x is nullptr, x_device is there).
  virtual bool wants_host_input(Linear first) const { return true; }
  // Attention entropy: sums[seq * n_heads + h] = Σ over query positions of the entropy of head h.
  virtual bool wants_attention_entropy() const { return false; }
  virtual void on_attention_entropy(int block, const double* sums, int n_seq, int n_heads, int seq_len) {}
};

// Rows of logits computed at a time (head_nll, eval's KL): ~64 MB of scratch at any vocabulary.
int64_t head_rows_per_slice(int vocab);

struct HeadWeights {
  std::vector<float> norm;     // [hidden]
  std::vector<float> lm_head;  // [vocab, hidden]
  static HeadWeights load(const LlamaWeights& w);
};

// The lm_head's input for `rows` final hidden states x [rows, hidden] into y (may alias x): the
// final RMSNorm (weights `norm`), then, for minicpm, ÷ hidden_size/dim_model_base. The
// evaluation head and the lm_head's calibration (quantize --quantize-lm-head) both use it.
void head_input(const ModelConfig& cfg, const float* norm, const float* x, float* y, int64_t rows);

// Packed sequences for run_block ([n_seq * seq_len] each): a row's RoPE position, and the keys it
// sees (AttentionShape::prefix_end / branch_begin).
struct SeqPacking {
  const int32_t* positions = nullptr;
  const int32_t* prefix_end = nullptr;
  const int32_t* branch_begin = nullptr;
};

class LlamaForward {
 public:
  explicit LlamaForward(const ModelConfig& cfg);
  virtual ~LlamaForward() = default;

  // x [n_seq*seq_len, hidden] (host memory) is updated in place to the block's output.
  virtual void run_block(const BlockWeights& w, float* x, int n_seq, int seq_len,
                         LinearObserver* observer = nullptr, const SeqPacking* packing = nullptr);
  // Final RMSNorm (+ family scaling, head_input) + lm_head of the rows `rows` of x: logits [n, vocab].
  virtual void head_logits(const HeadWeights& h, const float* x, const int64_t* rows, int64_t n,
                           float* logits);
  // Negative log-likelihood of targets[i] at row rows[i] (log-softmax over the vocabulary).
  virtual void head_nll(const HeadWeights& h, const float* x, const int64_t* rows, const int32_t* targets,
                        int64_t n, double* nll);
  // The KL evaluation's head: per scored row i, h on row rows[i] of x and h_ref (the base model)
  // on row rows_ref[i] of x_ref: KL(base ‖ h), whether both argmaxes agree, and the NLL of
  // targets[i] under each (model/cpu_ops.h rows_kl, rows_nll), in slices of head_rows_per_slice
  // rows. A device engine keeps the logits on the device.
  virtual void head_kl(const HeadWeights& h, const float* x, const int64_t* rows, const HeadWeights& h_ref,
                       const float* x_ref, const int64_t* rows_ref, const int32_t* targets, int64_t n, double* kl,
                       uint8_t* top1, double* nll, double* nll_base);

  // Residency (device engines): from hold(w) on, w's values do not change until the next hold of
  // it, so the engine uploads them once and keeps them; every hold re-uploads at the next use (hold
  // again after changing w in place). Calls with weights never held upload each time — slower,
  // never stale. The CPU reads weights in place and ignores both.
  virtual void hold(const BlockWeights& w) {}
  virtual void hold(const HeadWeights& h) {}

  // Residency of hidden states: from hold_activations(x, n) to release_activations(x), the n floats
  // at x change only through run_block / run_block_guarded calls on rows inside them, so a device
  // engine keeps them on its device (uploaded at the hold, written back at the release; the host
  // copy is stale in between) instead of moving every batch across at every block. The CPU
  // computes in place and ignores both.
  virtual void hold_activations(float* x, int64_t n) {}
  virtual void release_activations(float* x) {}

  // run_block, then the non-finite guard: check(x_in, x_out) on host copies of the block's input and
  // output (eval/non_finite.h check_block_output), its message returned ("" when all is finite).
  // The CPU copies the input and checks every output on the host; a device engine with x held
  // scans on the device and copies the two back only when a value is not finite.
  // The observer and the packing, when given, are run_block's.
  using OutputCheck = std::function<std::string(const float* x_in, const float* x_out)>;
  virtual std::string run_block_guarded(const BlockWeights& w, float* x, int n_seq, int seq_len,
                                        const OutputCheck& check, LinearObserver* observer = nullptr,
                                        const SeqPacking* packing = nullptr);
  // dst[0, n) = src[0, n) for hidden states inside or outside held regions: a device engine copies
  // where they live (device to device when both are held). The CPU: a plain copy.
  virtual void copy_activations(const float* src, float* dst, int64_t n);
  virtual const char* device_name() const { return "cpu"; }

  // FLOPs of one block over n_seq*seq_len tokens (2 per multiply-add; causal attention).
  double block_flops(int n_seq, int seq_len) const;

 protected:
  const RopeTable& rope(int seq_len);
  ModelConfig cfg_;

 private:
  std::map<int, RopeTable> ropes_;
  std::vector<float> xn_, qkv_, attn_, gu_, act_, branch_, head_x_, head_logits_, head_logits_ref_, guard_in_;
};

// The forward pass on this process's device (core/device.h current_device()): LlamaForward on
// the CPU, its CUDA twin on a GPU.
std::unique_ptr<LlamaForward> make_forward(const ModelConfig& cfg);

}  // namespace qsweep
