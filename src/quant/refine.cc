// refine.cc — greedy rounding refinements (see refine.h).
#include "quant/refine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/device.h"
#include "core/error.h"

#ifdef QSWEEP_WITH_CUDA
#include <exception>

#include "qsweep/cuda/refine.h"
#endif

namespace qsweep {

Refine parse_refine(const std::string& s) {
  if (s == "none") return Refine::None;
  if (s == "greedy") return Refine::Greedy;
  if (s == "greedy-exact") return Refine::GreedyExact;
  throw Error("--refine '" + s + "': expected none, greedy or greedy-exact");
}

const char* refine_name(Refine r) {
  switch (r) {
    case Refine::Greedy: return "greedy";
    case Refine::GreedyExact: return "greedy-exact";
    default: return "none";
  }
}

namespace {

// The grid of column c of row r: its scale and zero point.
struct ColumnGrid {
  const QuantizedLinear& q;
  int groups, glen;
  explicit ColumnGrid(const QuantizedLinear& ql) : q(ql), groups(ql.grid.groups(ql.in)), glen(ql.grid.group_len(ql.in)) {}
  int group(int c) const { return q.g_idx.empty() ? c / glen : q.g_idx[static_cast<size_t>(c)]; }
  size_t gi(int r, int c) const { return static_cast<size_t>(r) * groups + static_cast<size_t>(group(c)); }
};

// The code a move takes weight w (current code `code`) to, or -1 when there is none.
int move_target(float w, int code, float scale, int zero, int qmax) {
  const double u = static_cast<double>(w) / scale + zero;
  const double fl = std::floor(u);
  const int lo = static_cast<int>(std::clamp(fl, 0.0, static_cast<double>(qmax)));
  const int hi = static_cast<int>(std::clamp(fl + 1, 0.0, static_cast<double>(qmax)));
  if (lo == hi) return code == lo ? -1 : lo;
  if (code == lo) return hi;
  if (code == hi) return lo;
  return std::fabs(u - lo) <= std::fabs(u - hi) ? lo : hi;
}

}  // namespace

std::vector<double> mask_outliers(std::vector<double> xbar, double outlier_percent) {
  const size_t n = xbar.size();
  const size_t k = static_cast<size_t>(std::floor(outlier_percent * static_cast<double>(n) + 1e-9));
  if (k == 0) return xbar;
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return std::fabs(xbar[a]) > std::fabs(xbar[b]); });
  for (size_t i = 0; i < k; ++i) xbar[idx[i]] = 0;
  return xbar;
}

RefineResult refine_greedy(QuantizedLinear& q, const float* w, const std::vector<double>& xbar, double outlier_percent) {
  QS_ASSERT(static_cast<int>(xbar.size()) == q.in, "x̄ width");
  const std::vector<double> x = mask_outliers(xbar, outlier_percent);
  const ColumnGrid cg(q);
  const int qmax = (1 << q.grid.bits) - 1;
  RefineResult res;
  // Columns of each group (g_idx may scatter them under act-order).
  std::vector<std::vector<int>> cols(static_cast<size_t>(cg.groups));
  for (int c = 0; c < q.in; ++c) cols[static_cast<size_t>(cg.group(c))].push_back(c);
  for (int r = 0; r < q.out; ++r) {
    const float* wr = w + static_cast<size_t>(r) * q.in;
    uint8_t* code = q.codes.data() + static_cast<size_t>(r) * q.in;
    for (int g = 0; g < cg.groups; ++g) {
      const size_t gi = static_cast<size_t>(r) * cg.groups + static_cast<size_t>(g);
      const float s = q.scales[gi];
      const int z = q.zeros[gi];
      double e = 0;
      for (int c : cols[static_cast<size_t>(g)]) e += x[static_cast<size_t>(c)] * (static_cast<double>(wr[c]) - (code[c] - z) * static_cast<double>(s));
      res.before += std::fabs(e);
      for (;;) {
        int best = -1, best_to = 0;
        double best_e = std::fabs(e);
        for (int c : cols[static_cast<size_t>(g)]) {
          if (x[static_cast<size_t>(c)] == 0) continue;  // no effect on e
          const int to = move_target(wr[c], code[c], s, z, qmax);
          if (to < 0) continue;
          const double ne = std::fabs(e - x[static_cast<size_t>(c)] * (to - code[c]) * static_cast<double>(s));
          if (ne < best_e) best_e = ne, best = c, best_to = to;
        }
        if (best < 0) break;
        e -= x[static_cast<size_t>(best)] * (best_to - code[best]) * static_cast<double>(s);
        code[best] = static_cast<uint8_t>(best_to);
        ++res.moves;
      }
      res.after += std::fabs(e);
    }
  }
  return res;
}

RefineResult refine_greedy_exact(QuantizedLinear& q, const float* w, const std::vector<double>& gram, double damp) {
  const int n = q.in;
  QS_ASSERT(gram.size() == static_cast<size_t>(n) * n, "Gram size");
  const ColumnGrid cg(q);
  const int qmax = (1 << q.grid.bits) - 1;
  RefineResult res;
#ifdef QSWEEP_WITH_CUDA
  // On a GPU for layers of 2^16 weights and more (cuda/refine.h: the same moves but at near ties).
  if (current_device().kind == DeviceKind::Cuda && static_cast<int64_t>(q.out) * n >= (int64_t(1) << 16)) {
    std::vector<int32_t> col_group(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c) col_group[static_cast<size_t>(c)] = cg.group(c);
    try {
      const cuda::RefineTotals t =
          cuda::refine_greedy_exact(current_device().ordinal, q.codes.data(), w, q.out, n, q.scales.data(), q.zeros.data(),
                                    cg.groups, col_group.data(), qmax, gram.data(), damp);
      res.moves = t.moves, res.before = t.before, res.after = t.after;
    } catch (const std::exception& e) {
      QS_THROW("cuda greedy-exact refinement (" << q.out << " x " << n << "): " << e.what());
    }
    return res;
  }
#endif
  std::vector<double> d(static_cast<size_t>(n)), rg(static_cast<size_t>(n));
  std::vector<float> sc(static_cast<size_t>(n));
  std::vector<int> zc(static_cast<size_t>(n));
  for (int r = 0; r < q.out; ++r) {
    const float* wr = w + static_cast<size_t>(r) * n;
    uint8_t* code = q.codes.data() + static_cast<size_t>(r) * n;
    for (int c = 0; c < n; ++c) {
      const size_t gi = cg.gi(r, c);
      sc[static_cast<size_t>(c)] = q.scales[gi];
      zc[static_cast<size_t>(c)] = q.zeros[gi];
      d[static_cast<size_t>(c)] = static_cast<double>(wr[c]) - (code[c] - zc[static_cast<size_t>(c)]) * static_cast<double>(sc[static_cast<size_t>(c)]);
    }
    // rg = G' d; f = dᵀ G' d, G' = G + damp·diag G.
    double f = 0;
    for (int a = 0; a < n; ++a) {
      const double* ga = gram.data() + static_cast<size_t>(a) * n;
      double acc = damp * ga[a] * d[static_cast<size_t>(a)];
      for (int b = 0; b < n; ++b) acc += ga[b] * d[static_cast<size_t>(b)];
      rg[static_cast<size_t>(a)] = acc;
      f += d[static_cast<size_t>(a)] * acc;
    }
    res.before += f;
    for (;;) {
      // Moving column j by δ (ŵ_j += δ, d_j −= δ) changes f by −2δ(G'd)_j + δ²G'_jj.
      int best = -1, best_to = 0;
      double best_df = 0, best_delta = 0;
      for (int j = 0; j < n; ++j) {
        const int to = move_target(wr[j], code[j], sc[static_cast<size_t>(j)], zc[static_cast<size_t>(j)], qmax);
        if (to < 0) continue;
        const double delta = (to - code[j]) * static_cast<double>(sc[static_cast<size_t>(j)]);
        const double df = -2 * delta * rg[static_cast<size_t>(j)] + delta * delta * (1 + damp) * gram[static_cast<size_t>(j) * n + j];
        if (df < best_df - 1e-12 * std::fabs(f)) best_df = df, best = j, best_to = to, best_delta = delta;
      }
      if (best < 0) break;
      code[best] = static_cast<uint8_t>(best_to);
      d[static_cast<size_t>(best)] -= best_delta;
      const double* gb = gram.data() + static_cast<size_t>(best) * n;  // G is symmetric: column = row
      for (int a = 0; a < n; ++a) rg[static_cast<size_t>(a)] -= best_delta * gb[a];
      rg[static_cast<size_t>(best)] -= best_delta * damp * gb[best];
      f += best_df;
      ++res.moves;
    }
    res.after += f;
  }
  return res;
}

}  // namespace qsweep
