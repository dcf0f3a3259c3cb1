// perplexity.h — distributed perplexity evaluation.
//
// Windows are grouped into fixed global batches of `batch` windows; ranks own contiguous runs of
// batches. Each rank runs the model block by block (GPTQ-style layer-outer loop) over as many of
// its batches as fit in `activation_budget` bytes, so only one decoder block's weights are ever
// in memory. Per-window NLL sums (fp64, summed in position order) are gathered in window order
// and combined in that order on every rank: 1 rank and N ranks print the same digits, since a
// window's computation does not depend on which rank runs it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "dist/comm.h"
#include "eval/kl_stats.h"
#include "eval/windows.h"
#include "model/llama_weights.h"

namespace qsweep {

class QuantizedModel;
class ReferenceHidden;
class ReferenceHiddenWriter;

// Windows per forward batch: `batch` when set, else as many as make kEvalBatchTokens rows (at
// least one). 4096 rows give the GEMMs 8 tiles of 512 rows (ops/gemm.h), the large tiles that pack
// each weight panel least often; batches are also the unit ranks share.
constexpr int kEvalBatchTokens = 4096;
inline int eval_batch_windows(int batch, int ctx) { return batch > 0 ? batch : std::max(1, kEvalBatchTokens / ctx); }

struct EvalOptions {
  const QuantizedModel* quantized = nullptr;  // substitute these weights block by block
  bool kl_divergence = false;                  // also run the full-precision model: KL, top-1
  // With kl_divergence: take the full-precision model's final hidden states from this file
  // instead of running it alongside (qsweep run computes them once per sweep).
  const ReferenceHidden* reference = nullptr;
  // Write this run's final hidden states of every scored position (the full-precision run).
  ReferenceHiddenWriter* capture = nullptr;
  int batch = 0;                               // windows per forward batch; 0: eval_batch_windows
  int64_t activation_budget = int64_t(1) << 30;  // bytes of activations per rank
  bool progress = true;
  // Load block l+1 on a host thread while block l runs (eval/block_prefetch.h): -1 on a GPU only
  // (the default), 0 never, 1 always. The results are the same bits either way.
  int prefetch = -1;
  // Polled collectively before every block of every chunk (padded so every rank polls equally
  // often); true throws Interrupted. Set by qsweep run for SIGTERM/SIGUSR1.
  std::function<bool(const Comm&)> should_stop;
};

struct EvalResult {
  double perplexity = 0, mean_nll = 0;
  int64_t tokens_processed = 0, tokens_scored = 0;
  std::vector<double> window_nll;     // sum of NLL over the window's scored positions
  std::vector<int64_t> window_count;  // scored positions per window
  double forward_seconds = 0;         // max over ranks of forward compute time (no loading)
  double load_seconds = 0;            // max over ranks of block load/convert time
  double flops = 0;                   // total FLOPs of the forward passes, all ranks
  // With kl_divergence: per window Σ KL(full ‖ quantized) and top-1 agreements over scored tokens.
  std::vector<double> window_kl, window_top1;
  double kl_mean = 0, top1_agree = 0;
  KlStats kl_stats;  // llama.cpp's KL and token-probability statistics (eval/kl_stats.h)
};

EvalResult evaluate_perplexity(const LlamaWeights& model, const EvalWindows& w, const Comm& comm,
                               const EvalOptions& opt);

}  // namespace qsweep
