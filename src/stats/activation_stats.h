// activation_stats.h — calibration statistics of one decoder block, gathered as a
// LinearObserver while calibration chunks run through the block, and combined across ranks so
// that 1 and N ranks produce bit-identical sums (TreeSum for the small sums, ExactGram for Σxxᵀ).
//
// Per linear input (qkv, o_proj, gate_up, down_proj), sufficient statistics in fp64: per channel
// Σx², Σ|x|, max|x| and the token count; over all elements Σx, Σx², Σx³, Σx⁴ (mean, std, excess
// kurtosis) and the count of |x| < threshold × RMS (sparsity; the RMS is that of the sequence's
// input matrix, so each sequence is judged on its own scale); and, when asked, the Gram matrix
// Σ x xᵀ that GPTQ's Hessian (2/n Σ x xᵀ) and every layer's output error are computed from.
// Per attention head: Σ over query positions of the attention entropy.
//
// Memory does not grow with the number of chunks: the small per-chunk sums go into a pairwise
// TreeSum (O(log chunks) vectors of a few channels each), max|x| into a running maximum, and Σxxᵀ
// into one ExactGram per input (exact integer sums: order-free). Both are bit-identical for any
// rank count, given the same chunks.
#pragma once
#include <array>
#include <string>
#include <vector>

#include <memory>

#include "dist/comm.h"
#include "dist/tree_sum.h"
#include "model/config.h"
#include "model/forward.h"
#include "stats/praq.h"

namespace qsweep {

enum class BlockInput { Qkv = 0, O, GateUp, Down };
constexpr int kNumBlockInputs = 4;
const char* block_input_name(BlockInput i);  // "qkv", "o_proj", "gate_up", "down_proj"
BlockInput input_of(Linear l);

struct InputStats {
  int channels = 0;
  std::vector<double> sum_sq, sum_abs, max_abs;  // per channel
  std::vector<double> sum;                       // per channel, signed (the mean input x̄ = sum / tokens)
  double tokens = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, n_below = 0;
  std::vector<double> gram;  // channels x channels, Σ x xᵀ (empty unless requested)
  double elements() const { return tokens * channels; }
  double mean() const;
  double std() const;
  double excess_kurtosis() const;
  double sparsity() const { return n_below / elements(); }
};

class BlockBuffers;
class ExactGram;

// The calibration chunks of a run and this rank's contiguous share [first, last) of them.
struct ChunkRange {
  int64_t n = 1, first = 0, last = 1;
};

class BlockCalibStats : public LinearObserver {
 public:
  // praq: also accumulate Robust-PRAQ's importance of the gate/up input (stats/praq.h).
  // buffers (optional, must outlive this): where the Σxxᵀ totals' arrays come from and, when this
  // is destroyed, go back to for the next block (stats/block_buffers.h).
  BlockCalibStats(const ModelConfig& cfg, int seq_len, double sparsity_threshold, bool with_gram,
                  ChunkRange chunks = {}, const PraqSpec* praq = nullptr, BlockBuffers* buffers = nullptr);
  ~BlockCalibStats() override;
  // Starts the rank's next chunk (chunks must come in order: first, first + 1, ...).
  void begin_chunk();
  void on_linear_input(const LinearInput& in) override;
  // Every statistic (PRAQ's importance included) computes where a device forward's input is.
  bool wants_host_input(Linear) const override { return false; }
  bool wants_attention_entropy() const override { return true; }
  void on_attention_entropy(int block, const double* sums, int n_seq, int n_heads, int seq_len) override;
  // Collective: combines every rank's chunks; afterwards input() and entropy are valid.
  void reduce(const Comm& comm);

  const InputStats& input(BlockInput i) const { return totals_[static_cast<int>(i)]; }
  std::vector<double> entropy_sum;  // per head
  double entropy_queries = 0;       // query positions per head
  std::vector<double> praq_importance;  // with a PraqSpec: I_j per gate/up input channel (after reduce)

 private:
  void close_chunk();
  // Rows are summed in fixed tiles of kTileRows inside each sequence (CPU and GPU alike).
  static constexpr int kTileRows = 32;
  void add_host_sums(const LinearInput& in, double* st, std::vector<double>& mx) const;
  void add_device_sums(const LinearInput& in, double* st, std::vector<double>& mx) const;
  int seq_len_;
  double threshold_;
  bool with_gram_;
  int heads_;
  std::array<int, kNumBlockInputs> channels_;
  std::array<size_t, kNumBlockInputs + 1> offset_;  // of each input's sums (and the entropy) in cur_
  std::vector<double> cur_;                         // the open chunk's sums; empty when none is open
  std::unique_ptr<PraqAccumulator> praq_;
  size_t praq_off_ = 0;                             // of the PRAQ sums in cur_ (after the entropy)
  int64_t chunk_index_ = -1;                        // global index of the open chunk
  std::unique_ptr<TreeSum> tree_;
  std::array<std::vector<double>, kNumBlockInputs> max_abs_;
  std::vector<ExactGram> grams_;
  BlockBuffers* buffers_ = nullptr;
  std::array<InputStats, kNumBlockInputs> totals_;
};

// out[cols, cols] = xᵀx for x [rows, cols] (fp32 in, fp64 out), in fixed column tiles, each a
// single-threaded dgemm: the result does not depend on the thread count.
void gram_xtx(const float* x, int64_t rows, int cols, double* out);

}  // namespace qsweep
