// allocate.cc — the exact multiple-choice knapsack (see allocate.h).
#include "quant/allocate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace qsweep {

namespace {

struct Upgrade {
  int layer;          // position in the branching order
  int64_t dsize;      // > 0
  double gain;        // score saved, > 0
  double efficiency;  // gain per bit
};

class Solver {
 public:
  Solver(const std::vector<AllocLayer>& layers, int64_t budget, int64_t max_nodes)
      : layers_(layers), budget_(budget), max_nodes_(max_nodes) {
    const int n = static_cast<int>(layers.size());
    pareto_.resize(n);
    for (int l = 0; l < n; ++l) {
      const auto& c = layers[l].candidates;
      QS_CHECK(!c.empty(), "allocate: layer " << layers[l].name << " has no candidate");
      std::vector<int> idx(c.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::sort(idx.begin(), idx.end(), [&](int a, int b) {
        return c[a].size_bits != c[b].size_bits ? c[a].size_bits < c[b].size_bits : c[a].score < c[b].score;
      });
      double best = std::numeric_limits<double>::infinity();
      for (int i : idx)
        if (c[i].score < best) {  // a larger candidate is kept only if it scores strictly better
          pareto_[l].push_back(i);
          best = c[i].score;
        }
    }
    // Branching order: the widest score range first (the decisions that matter most).
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    auto range = [&](int l) { return cand(l, 0).score - cand(l, static_cast<int>(pareto_[l].size()) - 1).score; };
    std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) { return range(a) > range(b); });
    // Suffix sums of the smallest choices, and the hull upgrades in order of efficiency.
    suffix_size_.assign(n + 1, 0);
    suffix_score_.assign(n + 1, 0.0);
    for (int d = n - 1; d >= 0; --d) {
      suffix_size_[d] = suffix_size_[d + 1] + cand(order_[d], 0).size_bits;
      suffix_score_[d] = suffix_score_[d + 1] + cand(order_[d], 0).score;
    }
    for (int d = 0; d < n; ++d) {
      const int l = order_[d];
      std::vector<int> hull;  // indices into pareto_[l], lower convex hull
      for (int k = 0; k < static_cast<int>(pareto_[l].size()); ++k) {
        while (hull.size() >= 2) {
          const AllocCandidate &a = cand(l, hull[hull.size() - 2]), &b = cand(l, hull.back()), &p = cand(l, k);
          // b lies on or above the segment a–p: drop it (slopes must increase along the hull).
          const double lhs = (b.score - a.score) * static_cast<double>(p.size_bits - a.size_bits);
          const double rhs = (p.score - a.score) * static_cast<double>(b.size_bits - a.size_bits);
          if (lhs >= rhs) hull.pop_back();
          else break;
        }
        hull.push_back(k);
      }
      for (size_t k = 1; k < hull.size(); ++k) {
        const AllocCandidate &a = cand(l, hull[k - 1]), &b = cand(l, hull[k]);
        const int64_t ds = b.size_bits - a.size_bits;
        const double g = a.score - b.score;
        upgrades_.push_back({d, ds, g, g / static_cast<double>(ds)});
      }
    }
    std::stable_sort(upgrades_.begin(), upgrades_.end(),
                     [](const Upgrade& a, const Upgrade& b) { return a.efficiency > b.efficiency; });
  }

  AllocResult solve() {
    const int n = static_cast<int>(layers_.size());
    QS_CHECK(suffix_size_[0] <= budget_, "allocate: the budget (" << budget_ << " bits) is below the smallest possible model ("
                                                                  << suffix_size_[0] << " bits: every layer at its smallest candidate)");
    // First incumbent: every layer at its smallest candidate, then whole hull upgrades in LP order.
    std::vector<int> pos(n, 0);  // position in pareto_ per layer (by original layer index)
    std::vector<std::vector<int>> hull_steps(n);
    int64_t rem = budget_ - suffix_size_[0];
    {
      std::vector<int64_t> size(n);
      for (int l = 0; l < n; ++l) size[l] = cand(l, 0).size_bits;
      std::vector<char> blocked(n, 0);  // a layer whose next upgrade did not fit takes no later one
      for (const Upgrade& u : upgrades_) {
        const int l = order_[u.layer];
        if (blocked[l]) continue;
        if (u.dsize > rem) {
          blocked[l] = 1;
          continue;
        }
        // The next hull point of layer l: the Pareto candidate of that size.
        const int64_t target = size[l] + u.dsize;
        int k = pos[l];
        while (cand(l, k).size_bits != target) ++k;
        pos[l] = k;
        size[l] = target;
        rem -= u.dsize;
      }
    }
    best_choice_.assign(n, 0);
    best_score_ = 0;
    for (int l = 0; l < n; ++l) {
      best_choice_[l] = pos[l];
      best_score_ += cand(l, pos[l]).score;
    }
    cur_.assign(n, 0);
    dfs(0, 0, 0.0);
    AllocResult r;
    r.nodes = nodes_;
    for (int l = 0; l < n; ++l) {
      r.choice.push_back(pareto_[l][best_choice_[l]]);
      r.size_bits += cand(l, best_choice_[l]).size_bits;
      r.score += cand(l, best_choice_[l]).score;
    }
    return r;
  }

 private:
  const AllocCandidate& cand(int l, int k) const { return layers_[l].candidates[pareto_[l][k]]; }

  // LP relaxation of the layers at depths >= d with `budget` bits left: a lower bound.
  double lp_bound(int d, int64_t budget) const {
    int64_t rem = budget - suffix_size_[d];
    if (rem < 0) return std::numeric_limits<double>::infinity();
    double s = suffix_score_[d];
    for (const Upgrade& u : upgrades_) {
      if (u.layer < d) continue;
      if (u.dsize <= rem) {
        rem -= u.dsize;
        s -= u.gain;
      } else {
        s -= u.gain * static_cast<double>(rem) / static_cast<double>(u.dsize);
        break;
      }
    }
    return s;
  }

  void dfs(int d, int64_t used, double score) {
    QS_CHECK(++nodes_ <= max_nodes_, "allocate: optimality not proven within " << max_nodes_
                                                                              << " branch-and-bound nodes (use a smaller palette)");
    const int n = static_cast<int>(layers_.size());
    if (d == n) {
      if (score < best_score_ - tol()) {
        best_score_ = score;
        for (int l = 0; l < n; ++l) best_choice_[l] = cur_[l];
      }
      return;
    }
    const int l = order_[d];
    // Best score first: the largest Pareto candidates score lowest.
    for (int k = static_cast<int>(pareto_[l].size()) - 1; k >= 0; --k) {
      const AllocCandidate& c = cand(l, k);
      if (used + c.size_bits + suffix_size_[d + 1] > budget_) continue;
      const double bound = score + c.score + lp_bound(d + 1, budget_ - used - c.size_bits);
      if (bound >= best_score_ - tol()) continue;
      cur_[l] = k;
      dfs(d + 1, used + c.size_bits, score + c.score);
    }
  }

  double tol() const { return 1e-12 * std::max(1.0, std::fabs(best_score_)); }

  const std::vector<AllocLayer>& layers_;
  int64_t budget_, max_nodes_, nodes_ = 0;
  std::vector<std::vector<int>> pareto_;  // per layer: candidate indices, size ascending, score descending
  std::vector<int> order_;
  std::vector<int64_t> suffix_size_;
  std::vector<double> suffix_score_;
  std::vector<Upgrade> upgrades_;
  std::vector<int> cur_, best_choice_;
  double best_score_ = 0;
};

void brute(const std::vector<AllocLayer>& layers, int64_t budget, size_t l, std::vector<int>& cur, int64_t size,
           double score, AllocResult& best) {
  if (size > budget) return;
  if (l == layers.size()) {
    if (best.choice.empty() || score < best.score) {
      best.choice = cur;
      best.size_bits = size;
      best.score = score;
    }
    return;
  }
  for (size_t k = 0; k < layers[l].candidates.size(); ++k) {
    cur[l] = static_cast<int>(k);
    brute(layers, budget, l + 1, cur, size + layers[l].candidates[k].size_bits, score + layers[l].candidates[k].score, best);
  }
}

}  // namespace

AllocResult allocate_exact(const std::vector<AllocLayer>& layers, int64_t budget_bits, int64_t max_nodes) {
  QS_CHECK(!layers.empty(), "allocate: no layers");
  return Solver(layers, budget_bits, max_nodes).solve();
}

AllocResult allocate_brute_force(const std::vector<AllocLayer>& layers, int64_t budget_bits) {
  AllocResult best;
  std::vector<int> cur(layers.size(), 0);
  brute(layers, budget_bits, 0, cur, 0, 0.0, best);
  return best;
}

}  // namespace qsweep
