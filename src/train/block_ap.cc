// block_ap.cc — Block-AP training of one block (see block_ap.h).
#include "train/block_ap.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "core/error.h"
#include "train/block_pass.h"

namespace qsweep {

void AdamState::step(float* p, const double* g, size_t n, double lr, int64_t t) {
  constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  QS_ASSERT(t >= 1, "adam step");
  if (m.empty()) m.assign(n, 0.0f), v.assign(n, 0.0f);
  QS_ASSERT(m.size() == n, "adam state size");
  const double c1 = 1 - std::pow(b1, static_cast<double>(t)), c2 = 1 - std::pow(b2, static_cast<double>(t));
  for (size_t i = 0; i < n; ++i) {
    const double gi = static_cast<float>(g[i]);
    const double mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    const double upd = lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
    p[i] = static_cast<float>(p[i] - upd);
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

// The trained tensors of p in a fixed order: per quantized module, its weight rows, scales, zeros.
struct Trained {
  std::vector<Linear> mods;
  size_t size = 0;
  explicit Trained(const ModelConfig& cfg, const BlockParams<float>& p) {
    for (int m = 0; m < kNumLinear; ++m)
      if (p.quant[m].enabled()) {
        mods.push_back(static_cast<Linear>(m));
        const LinearRows lr = linear_rows(cfg, static_cast<Linear>(m));
        size += static_cast<size_t>(lr.out) * lr.in + 2 * p.quant[m].scales.size();
      }
  }
  // One trained tensor's place in the flattened order: module k's weight rows (part 0), scales
  // (1) or zeros (2), at [off, off + n).
  struct Segment {
    size_t off, n;
    size_t k;
    int part;
  };
  std::vector<Segment> segments(const ModelConfig& cfg, const BlockParams<float>& p) const {
    std::vector<Segment> out;
    size_t off = 0;
    for (size_t k = 0; k < mods.size(); ++k) {
      const LinearRows lr = linear_rows(cfg, mods[k]);
      const size_t nw = static_cast<size_t>(lr.out) * lr.in, nq = p.quant[static_cast<int>(mods[k])].scales.size();
      out.push_back({off, nw, k, 0});
      out.push_back({off + nw, nq, k, 1});
      out.push_back({off + nw + nq, nq, k, 2});
      off += nw + 2 * nq;
    }
    return out;
  }
  float* data(const ModelConfig& cfg, BlockParams<float>& p, const Segment& s) const {
    const Linear l = mods[s.k];
    if (s.part == 1) return p.quant[static_cast<int>(l)].scales.data();
    if (s.part == 2) return p.quant[static_cast<int>(l)].zeros.data();
    return p.matrix(l).data() + static_cast<size_t>(linear_rows(cfg, l).row0) * linear_rows(cfg, l).in;
  }
  // Appends grads' entries for the trained tensors to out.
  void flatten(const ModelConfig& cfg, const BlockParams<float>& g, std::vector<float>& out) const {
    for (Linear l : mods) {
      const LinearRows lr = linear_rows(cfg, l);
      const float* w = g.matrix(l).data() + static_cast<size_t>(lr.row0) * lr.in;
      out.insert(out.end(), w, w + static_cast<size_t>(lr.out) * lr.in);
      const auto& q = g.quant[static_cast<int>(l)];
      out.insert(out.end(), q.scales.begin(), q.scales.end());
      out.insert(out.end(), q.zeros.begin(), q.zeros.end());
    }
  }
};

// The flattened trained tensors are cut into one contiguous slice per rank: rank r sums the
// batch's gradients of its slice and steps AdamW there, so no rank holds every window's whole
// gradient or all the moments (a 1B-class block: 60M parameters, 240 MB of fp32 per window),
// and the sum per element still runs in the batch's window order, whatever the rank count.
struct Slice {
  size_t lo, hi;
};
Slice slice_of(size_t n, int r, int ranks) {
  return {n * static_cast<size_t>(r) / static_cast<size_t>(ranks), n * static_cast<size_t>(r + 1) / static_cast<size_t>(ranks)};
}
// The part [a, a + n) of segment seg that lies in a rank's slice.
struct Piece {
  size_t seg, a, n;
};

// Forward (and, with grads, backward) of one local window alone: its squared error, and into
// `rec` the gradient of the batch loss's share (2·d/numel) flattened.
// `pass` holds the block's current parameters (set_params).
double window_pass(const ModelConfig& cfg, BlockPass& pass, const BlockApData& d, int local, double numel,
                   const Trained* tr, std::vector<float>* rec) {
  const size_t per = static_cast<size_t>(d.ctx) * cfg.hidden_size;
  std::vector<float> x(d.x_q.begin() + local * per, d.x_q.begin() + (local + 1) * per);
  pass.forward(x.data(), 1, d.ctx);
  const float* y = d.y_fp.data() + local * per;
  double se = 0;
  std::vector<float> dy(tr ? per : 0);
  for (size_t i = 0; i < per; ++i) {
    const double e = static_cast<double>(x[i]) - y[i];
    se += e * e;
    if (tr) dy[i] = static_cast<float>(2.0 * e / numel);
  }
  if (tr) {
    BlockParams<float> grads;
    pass.backward(dy.data(), grads, dy.data());
    tr->flatten(cfg, grads, *rec);
  }
  return se;
}

bool owns(const BlockApData& d, int w) { return w >= d.first && w < d.first + d.count; }

// Every rank gets its pass, or every rank stops (a GPU that cannot hold one fails on its rank only).
std::unique_ptr<BlockPass> agreed_pass(const ModelConfig& cfg, const Comm& comm) {
  std::unique_ptr<BlockPass> pass;
  run_agreed(comm, [&] { pass = make_block_pass(cfg); });
  return pass;
}

double mse_of(const ModelConfig& cfg, BlockPass& pass, const BlockParams<float>& p, const BlockApData& d, int w0, int w1,
              const Comm& comm) {
  const size_t per = static_cast<size_t>(d.ctx) * cfg.hidden_size;
  std::vector<double> mine;  // (window, squared error) records
  run_agreed(comm, [&] {
    pass.set_params(p);
    for (int w = std::max(w0, d.first); w < std::min(w1, d.first + d.count); ++w)
      mine.insert(mine.end(), {static_cast<double>(w), window_pass(cfg, pass, d, w - d.first, 1, nullptr, nullptr)});
  });
  const std::vector<double> all = comm.allgatherv(mine);
  std::vector<double> se(static_cast<size_t>(std::max(0, w1 - w0)), 0.0);
  for (size_t r = 0; r + 1 < all.size(); r += 2) se[static_cast<size_t>(all[r]) - w0] = all[r + 1];
  double sum = 0;
  for (double v : se) sum += v;  // window order
  return w1 > w0 ? sum / (static_cast<double>(w1 - w0) * per) : 0.0;
}

}  // namespace

double block_mse(const ModelConfig& cfg, const BlockParams<float>& p, const BlockApData& d, int w0, int w1, const Comm& comm) {
  const std::unique_ptr<BlockPass> pass = agreed_pass(cfg, comm);
  return mse_of(cfg, *pass, p, d, w0, w1, comm);
}

BlockApCurve train_block_ap(const ModelConfig& cfg, BlockParams<float>& p, const BlockApData& d, const BlockApOptions& o,
                            const Comm& comm, const std::function<bool(const Comm&)>& should_stop) {
  const size_t per = static_cast<size_t>(d.ctx) * cfg.hidden_size;
  QS_CHECK(d.x_q.size() == per * d.count && d.y_fp.size() == per * d.count && d.first >= 0 && d.first + d.count <= d.n,
           "block-ap: inputs and targets must hold the rank's " << d.count << " windows");
  QS_CHECK(o.epochs >= 1 && o.train_batch >= 1, "block-ap: --epochs and --train-batch must be at least 1");
  QS_CHECK(o.val_windows >= 0 && o.val_windows < d.n, "block-ap: " << o.val_windows << " validation windows of " << d.n
                                                                     << ": at least one window must be left for training");
  QS_CHECK(o.weight_lr >= 0 && o.quant_lr >= 0, "block-ap: learning rates must be >= 0");
  clamp_quantizers(p);
  const int n_train = d.n - o.val_windows;
  const int steps_per_epoch = (n_train + o.train_batch - 1) / o.train_batch;
  const int64_t total = static_cast<int64_t>(o.epochs) * steps_per_epoch;
  const Trained tr(cfg, p);
  const std::vector<Trained::Segment> segs = tr.segments(cfg, p);
  // This rank's slice of the flattened tensors, as pieces of segments, each with its AdamW moments.
  const Slice mine = slice_of(tr.size, comm.rank(), comm.size());
  std::vector<Piece> pieces;
  for (size_t i = 0; i < segs.size(); ++i) {
    const size_t lo = std::max(mine.lo, segs[i].off), hi = std::min(mine.hi, segs[i].off + segs[i].n);
    if (lo < hi) pieces.push_back({i, lo - segs[i].off, hi - lo});
  }
  std::vector<AdamState> adam(pieces.size());
  BlockApCurve curve;
  double best = std::numeric_limits<double>::infinity();
  int since_best = 0;
  int64_t t = 0;
  std::vector<double> sum(mine.hi - mine.lo);
  const std::unique_ptr<BlockPass> pass = agreed_pass(cfg, comm);  // the device's, kept across steps
  for (int e = 0; e < o.epochs; ++e) {
    std::vector<int> order(static_cast<size_t>(n_train));
    for (int i = 0; i < n_train; ++i) order[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(e) + 1);
    for (int i = n_train - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng() % static_cast<uint64_t>(i + 1))]);
    curve.order.insert(curve.order.end(), order.begin(), order.end());
    for (int b0 = 0; b0 < n_train; b0 += o.train_batch) {
      if (should_stop && should_stop(comm)) throw Interrupted();
      const int nb = std::min(o.train_batch, n_train - b0);
      const double numel = static_cast<double>(nb) * per;
      // Each owned window's [batch position, squared error] and its gradient's slices to every rank
      // (the gradient as the fp32 the backward pass computed: exact in the double sum below).
      std::vector<std::vector<double>> to_head(static_cast<size_t>(comm.size()));
      std::vector<std::vector<float>> to_grad(static_cast<size_t>(comm.size()));
      run_agreed(comm, [&] {
        pass->set_params(p);  // this step's parameters (on a GPU: uploaded once per step)
        for (int j = 0; j < nb; ++j) {
          const int w = order[static_cast<size_t>(b0 + j)];
          if (!owns(d, w)) continue;
          std::vector<float> g;
          const double se_w = window_pass(cfg, *pass, d, w - d.first, numel, &tr, &g);
          for (int r = 0; r < comm.size(); ++r) {
            const Slice sr = slice_of(tr.size, r, comm.size());
            to_head[static_cast<size_t>(r)].insert(to_head[static_cast<size_t>(r)].end(), {static_cast<double>(j), se_w});
            auto& out = to_grad[static_cast<size_t>(r)];
            out.insert(out.end(), g.begin() + static_cast<std::ptrdiff_t>(sr.lo), g.begin() + static_cast<std::ptrdiff_t>(sr.hi));
          }
        }
      });
      const std::vector<std::vector<double>> heads = comm.alltoallv(to_head);
      const std::vector<std::vector<float>> grads = comm.alltoallv(to_grad);
      to_grad.clear();
      const size_t len = mine.hi - mine.lo;
      std::vector<double> se_of(static_cast<size_t>(nb), 0.0);
      std::vector<const float*> by_pos(static_cast<size_t>(nb), nullptr);
      std::vector<char> seen(static_cast<size_t>(nb), 0);
      for (size_t s = 0; s < heads.size(); ++s) {  // sender s: its windows' heads and slices, in the same order
        QS_ASSERT(grads[s].size() * 2 == heads[s].size() * len, "block-ap: exchanged records");
        for (size_t k = 0; 2 * k < heads[s].size(); ++k) {
          const size_t j = static_cast<size_t>(heads[s][2 * k]);
          se_of[j] = heads[s][2 * k + 1];
          seen[j] = 1;
          by_pos[j] = grads[s].data() + k * len;
        }
      }
      std::fill(sum.begin(), sum.end(), 0.0);
      double se = 0;
      for (int j = 0; j < nb; ++j) {  // the batch's window order, whichever rank computed each
        const float* r = by_pos[static_cast<size_t>(j)];
        QS_ASSERT(seen[static_cast<size_t>(j)], "block-ap: a window of the batch is missing");
        se += se_of[static_cast<size_t>(j)];
        for (size_t i = 0; i < len; ++i) sum[i] += static_cast<double>(r[i]);
      }
      curve.train_loss.push_back(se / numel);
      ++t;
      const double lw = cosine_lr(o.weight_lr, t - 1, total), lq = cosine_lr(o.quant_lr, t - 1, total);
      // AdamW on this rank's slice (element-wise: the same update whichever rank applies it),
      // then every rank gathers the slices back into p.
      std::vector<float> updated(mine.hi - mine.lo);
      for (size_t i = 0; i < pieces.size(); ++i) {
        const Piece& pc = pieces[i];
        const Trained::Segment& sg = segs[pc.seg];
        float* x = tr.data(cfg, p, sg) + pc.a;
        const size_t at = sg.off + pc.a - mine.lo;
        adam[i].step(x, sum.data() + at, pc.n, sg.part == 0 ? lw : lq, t);
        std::copy(x, x + pc.n, updated.begin() + static_cast<std::ptrdiff_t>(at));
      }
      const std::vector<float> all = comm.allgatherv(updated);
      QS_ASSERT(all.size() == tr.size, "block-ap: gathered parameters");
      for (const Trained::Segment& sg : segs) std::copy(all.begin() + static_cast<std::ptrdiff_t>(sg.off),
                                                       all.begin() + static_cast<std::ptrdiff_t>(sg.off + sg.n), tr.data(cfg, p, sg));
      clamp_quantizers(p);
    }
    curve.epochs_run = e + 1;
    if (o.val_windows > 0) {
      const double v = mse_of(cfg, *pass, p, d, n_train, d.n, comm);
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
  const int ng = (lr.in + q.group - 1) / q.group, qmax = (1 << q.bits) - 1;
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
