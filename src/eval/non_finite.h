// non_finite.h — the guard against silent wrong numbers in the block loops (eval, calibrate,
// quantize): a block's output activations are scanned once after the block (never inside the hot
// loops), and only when the scan finds inf/NaN is the offending sequence rerun through the block
// to name the module where the first non-finite value appears. A finite checkpoint can still
// overflow the fp32 forward pass (one bf16 weight of 1e38); without the guard the NaN would flow
// into a perplexity of -nan or a quantized.h5 full of NaN errors, and the command would succeed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/forward.h"

namespace qsweep {

// Index of the first inf/NaN of x[0, n), or -1.
int64_t find_non_finite(const float* x, int64_t n);
// Whether every value is finite.
bool all_finite(const double* v, size_t n);
inline bool all_finite(const std::vector<double>& v) { return all_finite(v.data(), v.size()); }

// Checks the block's output `x_out` [n_seq * seq_len, hidden]; returns "" when every value is
// finite, else the error message: "<what>: non-finite activations in block B, layer <module>:
// <how>". `x_in` is the block's input (same shape, unmodified): the first sequence holding a
// non-finite value is rerun through `w` with `fwd` to find the module. `what` names the stage.
std::string check_block_output(const std::string& what, LlamaForward& fwd, const BlockWeights& w, int block,
                               const float* x_in, const float* x_out, int n_seq, int seq_len, int hidden);

}  // namespace qsweep
