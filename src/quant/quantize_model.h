// quantize_model.h — the calibration + quantization pipeline (`qsweep quantize`).
//
// Calibration windows are split into fixed chunks of `calib_chunk` sequences; ranks own
// contiguous chunk ranges. Block by block: the rank's activations run through the full-precision
// block while BlockCalibStats gathers statistics and Gram matrices per chunk; the partials are
// combined in chunk order (identical on any rank count); the block's quantization tasks (one per
// linear for RTN/GPTQ; one per input group for the AWQ search, then one per linear) are spread
// over ranks longest-first and their results broadcast; every rank substitutes the quantized
// weights and, unless --no-propagate, reruns its activations through the quantized block so block
// i+1 sees the outputs of quantized blocks < i+1 (GPTQ/AWQ's sequential mode). Only one block's
// weights are in memory at a time; the rank's hidden states (one copy: each chunk's output is
// written over its input) stay in memory within activation_budget and go to a scratch file
// beyond it (ActivationStore); the statistics take O(1) Grams and O(log chunks) small vectors.
//
// Reliability: every block's output activations are scanned for inf/NaN (per chunk, after the
// block), the reduced statistics once per block, and every layer's scales and errors once after
// the broadcast; anything non-finite throws an Error naming the block and the layer. A check that
// fails on one rank only (an owner's task, one rank's chunk) is agreed on before the next
// collective (Comm::agree_or_throw), so every rank throws the same message and none hangs.
// Test hook: QSWEEP_TEST_FAIL_LAYER=<module>[@<method>] (e.g. model.layers.1.mlp.down_proj@gptq)
// makes the rank that quantizes that module throw (read in quantize_model.cc, nowhere else).
#pragma once
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "eval/calib_windows.h"
#include "model/llama_weights.h"
#include "quant/gptq.h"
#include "quant/grid.h"
#include "quant/method.h"
#include "quant/refine.h"
#include "stats/activation_stats.h"
#include "train/block_ap.h"

namespace qsweep {

// A method: rtn, awq, gptq (quant/method.h). parse_method throws listing the known names.
const QuantMethodDef* parse_method(const std::string& s);
const char* method_name(const QuantMethodDef* m);

// Full-precision block statistics (with Σxxᵀ) of one calibration set, kept by `qsweep run`
// across the cells that share it. --no-propagate cells all calibrate on the full-precision
// model's inputs, so the first such cell computes every block's statistics and the others skip
// all calibration forward passes; the statistics are the very objects the first cell used, so
// every later cell's result is bit-identical to computing them afresh.
class BlockStatsCache {
 public:
  explicit BlockStatsCache(int n_blocks) : blocks_(static_cast<size_t>(n_blocks)) {}
  bool complete() const {
    for (const auto& b : blocks_)
      if (!b) return false;
    return true;
  }
  const BlockCalibStats* get(int block) const { return blocks_[static_cast<size_t>(block)].get(); }
  void put(int block, std::unique_ptr<BlockCalibStats> s) { blocks_[static_cast<size_t>(block)] = std::move(s); }

 private:
  std::vector<std::unique_ptr<BlockCalibStats>> blocks_;
};

struct QuantizeOptions {
  const QuantMethodDef* method = nullptr;  // nullptr: rtn
  GridSpec grid;                              // default for every linear
  std::map<std::string, GridSpec> plan;       // per module name (from --plan)
  int calib_chunk = 4;                        // sequences per chunk (fixes the reduction order)
  int64_t activation_budget = int64_t(1) << 30;  // bytes of hidden states per rank kept in memory
  std::string scratch_dir = ".";                 // where they go beyond it
  bool propagate = true;
  double sparsity_threshold = 0.01;
  int awq_grid = 20;
  std::string awq_salience = "l2";  // l2 | l1 | praq (parsed into awq_l2 / awq_praq)
  bool awq_l2 = true;  // salience sqrt(mean x²); false: mean |x| (AutoAWQ)
  bool awq_praq = false;  // gate/up: Robust-PRAQ's risk-aware importance (stats/praq.h); else L2
  int noise_samples = 3;  // PRAQ's noise draws (with noise_std > 0)
  bool awq_clip = false;
  // AWQ's noise-robust scale search: Gaussian input noise of std noise_std × the input's RMS, in
  // closed form (the search's error and the L2 salience are quadratic in the inputs):
  // Σxxᵀ + tokens·σ²·RMS²·I and mean x² + σ²·RMS². 0: off.
  double noise_std = 0;
  GptqOptions gptq;
  // Block-AP (method_blockap.cc): training settings.
  BlockApOptions blockap;
  Refine refine = Refine::None;   // a rounding refinement after the method (quant/refine.h)
  double outlier_percent = 0.05;  // greedy: share of the largest |x̄| channels masked
  double refine_damp = 1;         // greedy-exact: minimise dᵀ(G + refine_damp·diag G)d
  bool quantize_lm_head = false;
  bool stats_only = false;  // qsweep calibrate: full-precision statistics, no Gram, no quantization
  bool progress = true;
  // Polled collectively at every block boundary (every rank calls it the same number of times);
  // when it returns true the pipeline throws Interrupted. Set by `qsweep run` for SIGTERM/SIGUSR1.
  std::function<bool(const Comm&)> should_stop;
  // Filled by the first, then read by later --no-propagate runs on the same calibration windows
  // (ignored with propagation, --quantize-lm-head, which needs the last hidden states, or stats_only).
  BlockStatsCache* fp_stats_cache = nullptr;
  // Sensitivity (qsweep sensitivity): every linear is also quantized with each of these grids,
  // with the same method and inputs, and its output error recorded (LinearResult::palette_error).
  std::vector<GridSpec> palette;
  bool keep_palette_weights = false;  // also return each palette grid's quantized weights (kl-probe)
  GridSpec grid_for(const std::string& module) const;
};

struct LinearResult {
  std::string name;
  QuantizedLinear q;
  double weight_mse = 0, output_error = 0, seconds = 0;
  double quant_seconds = 0, metric_seconds = 0;  // parts of seconds: quantize (+refine), error metrics (+palette)
  double awq_alpha = std::numeric_limits<double>::quiet_NaN();
  double gptq_damp = std::numeric_limits<double>::quiet_NaN();
  double awq_clip_shrink = std::numeric_limits<double>::quiet_NaN();  // mean shrink chosen
  int dead_columns = 0;
  int64_t refine_moves = 0;  // --refine: codes moved, and the refinement's objective before/after
  double refine_before = std::numeric_limits<double>::quiet_NaN(), refine_after = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> palette_error;  // output error per QuantizeOptions::palette grid
  std::vector<QuantizedLinear> palette_q;  // with keep_palette_weights: the weights per palette grid
};

struct BlockResult {
  int index = 0;
  std::vector<LinearResult> linears;           // q, k, v, o, gate, up, down
  std::vector<float> input_norm, post_norm;    // after AWQ folding
  const BlockCalibStats* stats = nullptr;      // valid during on_block
  double seconds = 0;
  std::vector<double> train_loss, val_loss;    // blockap: per step, per epoch (else empty)
  int train_epochs = 0;
  std::vector<std::pair<std::string, double>> attrs;  // the method's attributes of the block (blockap: SGRA budget)
};

class QuantizeSink {
 public:
  virtual ~QuantizeSink() = default;
  virtual void on_block(const BlockResult& b) = 0;
  virtual void on_lm_head(const LinearResult& r) {}
};

struct QuantizeSummary {
  double quantized_bits = 0, quantized_params = 0, other_bytes = 0, seconds = 0;
  double forward_seconds = 0;  // this rank's forward + statistics time (observation passes)
  double transform_seconds = 0;  // this rank's block transforms (AWQ scale search, Block-AP training)
  double quant_seconds = 0, metric_seconds = 0;  // summed over every layer (all ranks' layers)
  double load_seconds = 0;   // this rank's block loading (reading and converting the checkpoint)
  double reduce_seconds = 0;  // this rank's statistics set-up, reduction over ranks and checks
  double output_seconds = 0;  // this rank's hand-over of the results: layers exchanged, dequantized, written
  double bits_per_weight() const { return quantized_bits / quantized_params; }
  double model_bytes() const { return quantized_bits / 8 + other_bytes; }
};

// Checks bits, group sizes against every linear's width, and the plan's module names.
void validate_quantize_options(const LlamaWeights& model, const QuantizeOptions& opt);

QuantizeSummary quantize_model(const LlamaWeights& model, const CalibWindows& calib,
                               const QuantizeOptions& opt, const Comm& comm, QuantizeSink* sink);

}  // namespace qsweep
