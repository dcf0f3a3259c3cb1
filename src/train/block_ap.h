// block_ap.h — the training step of EfficientQAT's Block-AP for one decoder block (issue 16):
// every enabled quantizer of a BlockParams (train/block_grad.h: asymmetric group fake-quantizer,
// straight-through backward) is trained together with the weights it quantizes, so that the
// quantized block's output on the quantized model's inputs reproduces the full-precision block's
// output on full-precision inputs:
//     loss = mean over elements of (block_q(x_q) − y_fp)²,
// AdamW without weight decay (β = 0.9, 0.999, ε = 1e-8, torch's defaults; bias-corrected), the
// weights at `weight_lr`, scales and zero points at `quant_lr`, each on a cosine schedule from lr
// down to lr/20 over all steps (torch's CosineAnnealingLR, eta_min = lr/20, stepped per step);
// `epochs` passes over the training windows in batches of `train_batch` (the window order of
// each epoch a permutation seeded by `seed` and the epoch), the last `val_windows` windows held
// out and scored after each epoch; with `patience` > 0 training stops after that many epochs
// without a lower validation loss. After each step scales are kept ≥ 1e-5 and zero points in
// [0, qmax] (EfficientQAT clamps the rounded zero point to the grid), so the result is a valid
// stored grid: to_quantized() gives the codes, scales and integer zero points.
// Data-parallel: each rank holds its own windows; every window's forward and backward run alone
// (n_seq 1) on the rank that holds it, and each step's per-window gradients (and losses) are
// gathered and summed in the batch's window order, so every rank takes the same step and the
// result does not depend on the rank count.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "model/config.h"
#include "quant/grid.h"
#include "train/block_grad.h"

namespace qsweep {

struct BlockApOptions {
  int epochs = 2, train_batch = 2, val_windows = 0, patience = 0;
  double weight_lr = 1e-3, quant_lr = 1e-3;  // measured for 64 windows x 2 epochs (README); EfficientQAT: 1e-5/2e-5, 1e-4
  uint64_t seed = 0;
  // Set by `qsweep quantize` (quant/method_blockap.cc), not used by train_block_ap itself:
  std::string init = "minmax";                    // where the quantizer (and weights) start: minmax, rtn, awq, gptq
  std::string budget_from, budget_score = "auto";  // SGRA (train/sgra.h): the sensitivity file, its score
  double budget_epochs_gain = 1.0, budget_lr_gain = 0.5;
  std::vector<double> block_sensitivity;           // S_b per block, read from budget_from
};

struct BlockApCurve {
  std::vector<double> train_loss;  // per step: the batch's loss before the step
  std::vector<double> val_loss;    // per epoch, after it (empty without validation windows)
  std::vector<int> order;          // the training windows in the order they were used, epoch after epoch
  int epochs_run = 0;
};

// AdamW state of one parameter tensor and its update (no weight decay), step t ≥ 1.
struct AdamState {
  std::vector<float> m, v;  // fp32 moments: twice the trained tensors (the README memory model)
  // p[0, n) -= the AdamW update for gradient g[0, n) (summed in double, applied rounded to fp32,
  // the gradient tensors' type).
  void step(float* p, const double* g, size_t n, double lr, int64_t t);
};

// lr of step k (0-based) of `total` steps: lr/20 + ½(lr − lr/20)(1 + cos(π k / total)).
double cosine_lr(double lr, int64_t k, int64_t total);

// The windows a rank holds: global windows [first, first + count) of n, as [count, ctx, hidden].
struct BlockApData {
  const std::vector<float>& x_q;   // the quantized model's inputs to the block
  const std::vector<float>& y_fp;  // the full-precision block's outputs on full-precision inputs
  int first, count, n, ctx;
};

// Trains p (its enabled quantizers and their weights) in place; collective over comm.
// `should_stop`, when set, is polled (collectively) before every step; true throws Interrupted.
BlockApCurve train_block_ap(const ModelConfig& cfg, BlockParams<float>& p, const BlockApData& d,
                            const BlockApOptions& o, const Comm& comm, const std::function<bool(const Comm&)>& should_stop = {});

// The mean squared error of p's block on global windows [w0, w1) (collective).
double block_mse(const ModelConfig& cfg, const BlockParams<float>& p, const BlockApData& d, int w0, int w1, const Comm& comm);

// Module l's trained quantizer as stored codes (round(w/s) + round(z), clamped), scales and zero
// points; its dequantize() equals the fake-quantized weights the block was trained with.
QuantizedLinear to_quantized(const ModelConfig& cfg, const BlockParams<float>& p, Linear l);

}  // namespace qsweep
