// grad_head.cc — the model head as a loss: final RMSNorm of the selected hidden states, ÷ the
// minicpm logit divisor (model/forward.cc head_input), lm_head, log-softmax, mean NLL of the
// targets; and its backward: dlogits = dloss/n·(softmax − onehot(target)), then lm_head, the
// divisor and the RMSNorm backward, scattered back to the selected rows.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "train/grad_ops.h"

namespace qsweep {

template <typename T>
double head_loss_forward(const ModelConfig& cfg, const T* norm, const T* lm_head, const T* x,
                         const int64_t* rows, const int32_t* targets, int64_t n, HeadTape<T>& tape) {
  const int H = cfg.hidden_size, V = cfg.vocab_size;
  QS_CHECK(n > 0, "head loss over no rows");
  tape.n = n;
  tape.xsel.resize(size_t(n) * H);
  tape.inv.resize(n);
  tape.xh.resize(size_t(n) * H);
  tape.probs.resize(size_t(n) * V);
  for (int64_t i = 0; i < n; ++i) {
    QS_CHECK(rows[i] >= 0, "head loss: negative row " << rows[i]);
    QS_CHECK(targets[i] >= 0 && targets[i] < V, "head loss: target " << targets[i] << " outside the vocabulary of " << V);
    std::copy(x + rows[i] * H, x + (rows[i] + 1) * H, tape.xsel.begin() + i * H);
  }
  rmsnorm_forward<T>(tape.xsel.data(), norm, tape.xh.data(), n, H, static_cast<T>(cfg.rms_norm_eps),
                     tape.inv.data());
  if (cfg.mup_scaling) {
    const T d = static_cast<T>(cfg.logit_divisor());
    for (T& v : tape.xh) v /= d;
  }
  linear_forward<T>(tape.xh.data(), lm_head, nullptr, tape.probs.data(), n, H, V);
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    T* p = tape.probs.data() + i * V;
    const T target_logit = p[targets[i]];
    T mx = p[0];
    for (int j = 1; j < V; ++j) mx = std::max(mx, p[j]);
    double sum = 0;
    for (int j = 0; j < V; ++j) sum += static_cast<double>(p[j] = std::exp(p[j] - mx));
    const T inv = static_cast<T>(1.0 / sum);
    for (int j = 0; j < V; ++j) p[j] *= inv;
    loss += static_cast<double>(mx) + std::log(sum) - static_cast<double>(target_logit);
  }
  return loss / static_cast<double>(n);
}

template <typename T>
void head_loss_backward(const ModelConfig& cfg, const T* norm, const T* lm_head,
                        const int64_t* rows, const int32_t* targets, const HeadTape<T>& tape,
                        T dloss, int64_t x_rows, T* dx, T* dnorm, T* dlm_head) {
  const int H = cfg.hidden_size, V = cfg.vocab_size;
  const int64_t n = tape.n;
  const T c = dloss / static_cast<T>(n);
  std::vector<T> dlogits(size_t(n) * V);
  for (int64_t i = 0; i < n; ++i) {
    const T* p = tape.probs.data() + i * V;
    T* g = dlogits.data() + i * V;
    for (int j = 0; j < V; ++j) g[j] = c * p[j];
    g[targets[i]] -= c;
  }
  std::vector<T> dxh(size_t(n) * H);
  linear_backward<T>(tape.xh.data(), lm_head, dlogits.data(), n, H, V, dxh.data(), dlm_head, nullptr);
  if (cfg.mup_scaling) {
    const T d = static_cast<T>(cfg.logit_divisor());
    for (T& v : dxh) v /= d;
  }
  rmsnorm_backward<T>(tape.xsel.data(), norm, tape.inv.data(), dxh.data(), n, H, dxh.data(), dnorm);
  if (!dx) return;
  std::fill(dx, dx + x_rows * H, T(0));
  for (int64_t i = 0; i < n; ++i) {
    QS_CHECK(rows[i] < x_rows, "head loss: row " << rows[i] << " of " << x_rows);
    for (int c2 = 0; c2 < H; ++c2) dx[rows[i] * H + c2] += dxh[i * H + c2];
  }
}

template double head_loss_forward<float>(const ModelConfig&, const float*, const float*, const float*,
                                         const int64_t*, const int32_t*, int64_t, HeadTape<float>&);
template double head_loss_forward<double>(const ModelConfig&, const double*, const double*,
                                          const double*, const int64_t*, const int32_t*, int64_t,
                                          HeadTape<double>&);
template void head_loss_backward<float>(const ModelConfig&, const float*, const float*, const int64_t*,
                                        const int32_t*, const HeadTape<float>&, float, int64_t,
                                        float*, float*, float*);
template void head_loss_backward<double>(const ModelConfig&, const double*, const double*,
                                         const int64_t*, const int32_t*, const HeadTape<double>&,
                                         double, int64_t, double*, double*, double*);

}  // namespace qsweep
