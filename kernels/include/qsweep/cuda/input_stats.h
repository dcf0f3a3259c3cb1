// qsweep/cuda/input_stats.h — the sufficient statistics of one linear module's input computed where
// the input already is, on the GPU (kernels/input_stats.cu): the twin of the per-chunk sums in
// stats/activation_stats.cc, so that calibration need not copy every activation matrix to the host.
//
// The CPU's order is kept: rows are taken in tiles of `tile_rows` inside each sequence, a tile's
// per-channel sums start from zero and are added to the running total tile after tile. The
// products involved are squares of floats (exact in fp64), so the per-channel Σx², Σ|x|, Σx and
// max|x| equal the CPU's bit for bit; the whole-matrix sums (Σx³, Σx⁴ and the others) are summed in
// another order (per channel, then over channels on the host) and agree to rounding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qsweep::cuda {

// Fields of the result, each `cols` doubles, in this order.
enum InputStatField : int { kSumSq = 0, kSumAbs, kSum, kMaxAbs, kM1, kM2, kM3, kM4, kBelow, kNumInputStatFields };

// x_device [rows, cols] row-major on device `ordinal`, in sequences of seq_len rows (the last may
// be shorter). A value counts as "below" when |x| < threshold × the RMS of its sequence. Writes
// kNumInputStatFields × cols doubles to out_host: field f of channel c at f * cols + c (the
// whole-matrix sums are per channel: the caller adds them over the channels).
void input_stats(const float* x_device, int64_t rows, int cols, int seq_len, int tile_rows, double threshold,
                 int ordinal, double* out_host);

}  // namespace qsweep::cuda
