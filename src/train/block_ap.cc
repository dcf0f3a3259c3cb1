// block_ap.cc — Block-AP training of one block (see block_ap.h).
#include "train/block_ap.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/error.h"

namespace qsweep {

void AdamState::step(std::vector<float>& p, const std::vector<float>& g, double lr, int64_t t, size_t offset, size_t n) {
  constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  if (n == SIZE_MAX) n = p.size() - offset;
  QS_ASSERT(offset + n <= p.size() && offset + n <= g.size() && t >= 1, "adam step");
  if (m.empty()) m.assign(n, 0.0f), v.assign(n, 0.0f);
  QS_ASSERT(m.size() == n, "adam state size");
  const double c1 = 1 - std::pow(b1, static_cast<double>(t)), c2 = 1 - std::pow(b2, static_cast<double>(t));
  for (size_t i = 0; i < n; ++i) {
    const double gi = g[offset + i];
    const double mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    const double upd = lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
    p[offset + i] = static_cast<float>(p[offset + i] - upd);
  }
}

double cosine_lr(double lr, int64_t k, int64_t total) {
  const double lo = lr / 20;
  if (total <= 0) return lr;
  return lo + 0.5 * (lr - lo) * (1 + std::cos(M_PI * static_cast<double>(k) / static_cast<double>(total)));
}

namespace {

void clamp_quantizers(BlockParams<float>& p) {
  for (auto& q : p.quant) {
    if (!q.enabled()) continue;
    const float qmax = static_cast<float>((1 << q.bits) - 1);
    for (float& s : q.scales) s = std::max(s, 1e-5f);
    for (float& z : q.zeros) z = std::min(std::max(z, 0.0f), qmax);
  }
}

}  // namespace

double block_mse(const ModelConfig& cfg, const BlockParams<float>& p, const std::vector<float>& x_q,
                 const std::vector<float>& y_fp, int w0, int w1, int ctx) {
  const size_t per = static_cast<size_t>(ctx) * cfg.hidden_size;
  BlockTape<float> tape;
  double se = 0;
  for (int w = w0; w < w1; ++w) {  // one window at a time: the same bits whatever the batch
    std::vector<float> x(x_q.begin() + w * per, x_q.begin() + (w + 1) * per);
    block_forward(cfg, p, x.data(), 1, ctx, tape);
    for (size_t i = 0; i < per; ++i) {
      const double d = static_cast<double>(x[i]) - y_fp[w * per + i];
      se += d * d;
    }
  }
  return w1 > w0 ? se / (static_cast<double>(w1 - w0) * per) : 0.0;
}

BlockApCurve train_block_ap(const ModelConfig& cfg, BlockParams<float>& p, const std::vector<float>& x_q,
                            const std::vector<float>& y_fp, int n, int ctx, const BlockApOptions& o) {
  const size_t per = static_cast<size_t>(ctx) * cfg.hidden_size;
  QS_CHECK(x_q.size() == per * n && y_fp.size() == per * n, "block-ap: inputs and targets must hold " << n << " windows");
  QS_CHECK(o.epochs >= 1 && o.train_batch >= 1, "block-ap: --epochs and --train-batch must be at least 1");
  QS_CHECK(o.val_windows >= 0 && o.val_windows < n, "block-ap: " << o.val_windows << " validation windows of " << n
                                                                   << ": at least one window must be left for training");
  QS_CHECK(o.weight_lr >= 0 && o.quant_lr >= 0, "block-ap: learning rates must be >= 0");
  clamp_quantizers(p);
  const int n_train = n - o.val_windows;
  const int steps_per_epoch = (n_train + o.train_batch - 1) / o.train_batch;
  const int64_t total = static_cast<int64_t>(o.epochs) * steps_per_epoch;
  // One Adam state per trained tensor: each quantized module's weight rows, scales, zero points.
  std::vector<Linear> mods;
  for (int m = 0; m < kNumLinear; ++m)
    if (p.quant[m].enabled()) mods.push_back(static_cast<Linear>(m));
  std::vector<AdamState> st_w(mods.size()), st_s(mods.size()), st_z(mods.size());
  BlockApCurve curve;
  BlockTape<float> tape;
  BlockParams<float> grads;
  std::vector<float> xb, dy;
  double best = std::numeric_limits<double>::infinity();
  int since_best = 0;
  int64_t t = 0;
  for (int e = 0; e < o.epochs; ++e) {
    std::vector<int> order(static_cast<size_t>(n_train));
    for (int i = 0; i < n_train; ++i) order[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(e) + 1);
    for (int i = n_train - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng() % static_cast<uint64_t>(i + 1))]);
    for (int b0 = 0; b0 < n_train; b0 += o.train_batch) {
      const int nb = std::min(o.train_batch, n_train - b0);
      xb.resize(per * nb);
      for (int j = 0; j < nb; ++j) std::copy(x_q.begin() + order[static_cast<size_t>(b0 + j)] * per, x_q.begin() + (order[static_cast<size_t>(b0 + j)] + 1) * per, xb.begin() + j * per);
      block_forward(cfg, p, xb.data(), nb, ctx, tape);
      dy.resize(xb.size());
      double se = 0;
      const double scale = 2.0 / static_cast<double>(xb.size());
      for (int j = 0; j < nb; ++j) {
        const float* y = y_fp.data() + order[static_cast<size_t>(b0 + j)] * per;
        for (size_t i = 0; i < per; ++i) {
          const double d = static_cast<double>(xb[j * per + i]) - y[i];
          se += d * d;
          dy[j * per + i] = static_cast<float>(scale * d);
        }
      }
      curve.train_loss.push_back(se / static_cast<double>(xb.size()));
      block_backward(cfg, p, tape, dy.data(), grads, dy.data());  // the input's gradient (unused) overwrites dy
      ++t;
      const double lw = cosine_lr(o.weight_lr, t - 1, total), lq = cosine_lr(o.quant_lr, t - 1, total);
      for (size_t k = 0; k < mods.size(); ++k) {
        const Linear l = mods[k];
        const LinearRows lr = linear_rows(cfg, l);
        st_w[k].step(p.matrix(l), grads.matrix(l), lw, t, static_cast<size_t>(lr.row0) * lr.in, static_cast<size_t>(lr.out) * lr.in);
        auto& q = p.quant[static_cast<int>(l)];
        auto& gq = grads.quant[static_cast<int>(l)];
        st_s[k].step(q.scales, gq.scales, lq, t);
        st_z[k].step(q.zeros, gq.zeros, lq, t);
      }
      clamp_quantizers(p);
    }
    curve.epochs_run = e + 1;
    if (o.val_windows > 0) {
      const double v = block_mse(cfg, p, x_q, y_fp, n_train, n, ctx);
      curve.val_loss.push_back(v);
      if (v < best) best = v, since_best = 0;
      else if (o.patience > 0 && ++since_best >= o.patience) break;
    }
  }
  return curve;
}

QuantizedLinear to_quantized(const ModelConfig& cfg, const BlockParams<float>& p, Linear l) {
  const LinearQuant<float>& q = p.quant[static_cast<int>(l)];
  QS_CHECK(q.enabled(), "block-ap: " << linear_short_name(l) << " has no quantizer");
  const LinearRows lr = linear_rows(cfg, l);
  QuantizedLinear r;
  r.out = lr.out, r.in = lr.in;
  r.grid = GridSpec{q.bits, q.group, false};
  const int ng = lr.in / q.group, qmax = (1 << q.bits) - 1;
  r.scales = q.scales;
  r.zeros.resize(q.zeros.size());
  for (size_t i = 0; i < q.zeros.size(); ++i) r.zeros[i] = static_cast<int32_t>(std::nearbyint(q.zeros[i]));
  r.codes.resize(static_cast<size_t>(lr.out) * lr.in);
  const float* W = p.matrix(l).data() + static_cast<size_t>(lr.row0) * lr.in;
  for (int row = 0; row < lr.out; ++row)
    for (int c = 0; c < lr.in; ++c) {
      const size_t gi = static_cast<size_t>(row) * ng + c / q.group;
      const float code = std::nearbyint(W[static_cast<size_t>(row) * lr.in + c] / q.scales[gi]) + static_cast<float>(r.zeros[gi]);
      r.codes[static_cast<size_t>(row) * lr.in + c] = static_cast<uint8_t>(std::min(std::max(code, 0.0f), static_cast<float>(qmax)));
    }
  return r;
}

}  // namespace qsweep
