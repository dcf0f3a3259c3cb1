// rope.h — rotary position embedding tables in the Hugging Face rotate_half convention:
// for a head vector x = [x1 | x2] (halves), out = [x1 cos - x2 sin | x2 cos + x1 sin] with
// angle(pos, i) = pos * inv_freq[i], inv_freq[i] = theta^(-2i/d), optionally rescaled by the
// llama3 rule (low frequencies divided by `factor`, a smooth blend between the two cut-offs).
// Angles are computed in double and rounded once, so tables are exact to fp32 precision.
#pragma once
#include <vector>

#include "model/config.h"

namespace qsweep {

std::vector<double> rope_inv_freq(const ModelConfig& c);

struct RopeTable {
  int seq_len = 0, half = 0;
  std::vector<float> cos, sin;  // [seq_len, half]
  RopeTable() = default;
  RopeTable(const ModelConfig& c, int seq_len);
};

// Rotates `n_heads` heads of width 2*half in each of n_seq*seq_len rows of x (row stride ld);
// the row's position is its index within its sequence.
// With `positions` ([n_seq*seq_len], each < t.seq_len), row r's position is positions[r] instead
// (packed sequences whose branches restart after a shared prefix).
void rope_apply(float* x, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTable& t,
                const int32_t* positions = nullptr);

}  // namespace qsweep
