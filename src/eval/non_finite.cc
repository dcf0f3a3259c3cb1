// non_finite.cc — scanning block outputs for inf/NaN and tracing the first one to its module.
#include "eval/non_finite.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace qsweep {

int64_t find_non_finite(const float* x, int64_t n) {
  int64_t first = n;
#pragma omp parallel for reduction(min : first) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]) && i < first) first = i;
  return first == n ? -1 : first;
}

bool all_finite(const double* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

namespace {

// Watches one sequence's pass through the block: the first module whose product x·Wᵀ holds
// inf/NaN although its input is finite, or else the first linear input that holds inf/NaN — then
// the culprit is the step before it, and the largest-magnitude module feeding that step is named.
class Tracer : public LinearObserver {
 public:
  explicit Tracer(const BlockWeights& w) : w_(w) {}
  void on_linear_input(const LinearInput& in) override {
    if (!where.empty()) return;
    const Linear first = in.modules[0];
    if (find_non_finite(in.x, in.rows * in.cols) >= 0) {
      where = culprit_of_input(in.block, first);
      return;
    }
    for (int m = 0; m < in.n_modules; ++m) {
      const Linear l = in.modules[m];
      const int out = w_.out_features(l);
      y_.resize(static_cast<size_t>(in.rows) * out);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(in.rows), out, in.cols, 1.0f, in.x,
                  in.cols, w_.linear(l), in.cols, 0.0f, y_.data(), out);
      if (find_non_finite(y_.data(), static_cast<int64_t>(y_.size())) >= 0) {
        where = "layer " + linear_module_name(in.block, l) +
                ": its output overflows to inf/NaN although its input is finite (check that module's weights)";
        return;
      }
      float mx = 0;
      for (float v : y_) mx = std::max(mx, std::fabs(v));
      max_out_[static_cast<int>(l)] = mx;
    }
  }
  std::string where;

 private:
  // The largest output among `feeders` (computed before), as "layer NAME (max |output| V)".
  std::string largest(int block, std::initializer_list<Linear> feeders) const {
    Linear best = *feeders.begin();
    for (Linear l : feeders)
      if (max_out_[static_cast<int>(l)] > max_out_[static_cast<int>(best)]) best = l;
    std::ostringstream o;
    o << "layer " << linear_module_name(block, best) << " (largest output " << max_out_[static_cast<int>(best)] << ")";
    return o.str();
  }
  std::string culprit_of_input(int block, Linear first) const {
    switch (first) {
      case Linear::Down:
        return largest(block, {Linear::Up, Linear::Gate}) +
               ": act(gate_proj) * up_proj, the input of down_proj, overflows to inf/NaN";
      case Linear::O:
        return largest(block, {Linear::Q, Linear::K, Linear::V}) +
               ": the attention over q/k/v_proj's outputs, the input of o_proj, holds inf/NaN";
      case Linear::Gate:
        return "layer " + linear_module_name(block, Linear::O) +
               " (residual stream): post_attention_layernorm's output, the input of gate/up_proj, holds inf/NaN";
      default:
        return "layer " + linear_module_name(block, first) +
               ": input_layernorm's output, the input of q/k/v_proj, holds inf/NaN";
    }
  }
  const BlockWeights& w_;
  std::vector<float> y_;
  float max_out_[kNumLinear] = {};
};

}  // namespace

std::string check_block_output(const std::string& what, LlamaForward& fwd, const BlockWeights& w, int block,
                               const float* x_in, const float* x_out, int n_seq, int seq_len, int hidden) {
  const int64_t per_seq = static_cast<int64_t>(seq_len) * hidden;
  const int64_t bad = find_non_finite(x_out, per_seq * n_seq);
  if (bad < 0) return "";
  const int64_t seq = bad / per_seq;
  std::ostringstream msg;
  msg << what << ": non-finite activations in block " << block << ", ";
  if (find_non_finite(x_in + seq * per_seq, per_seq) >= 0) {
    msg << "whose input already holds inf/NaN";
    return msg.str();
  }
  std::vector<float> x(x_in + seq * per_seq, x_in + (seq + 1) * per_seq);
  Tracer t(w);
  fwd.run_block(w, x.data(), 1, seq_len, &t);
  if (!t.where.empty())
    msg << t.where;
  else
    msg << "layer model.layers." << block << " (residual stream): every module's output is finite, their sum is not";
  return msg.str();
}

}  // namespace qsweep
