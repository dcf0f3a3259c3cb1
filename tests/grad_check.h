// grad_check.h — the gradient checker shared by test_grad.cc and test_grad_block.cc: central
// finite differences of a float64 loss, the relative error ‖g − g_fd‖/‖g_fd‖ of a float32
// gradient with a per-test report of the worst error, and FrozenQuant, the fake quantizer with its
// rounded codes and clamp pattern held at a point (whose exact derivatives are the STE's).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace qsweep::test {

constexpr double kGradTol = 1e-4;

inline std::vector<float> randn(size_t n, std::mt19937_64& rng, double sd = 1.0) {
  std::normal_distribution<float> nd(0.f, static_cast<float>(sd));
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

inline std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// d loss / d p[i] by central differences (step 1e-6·max(1, |p[i]|)) for every i, or for the
// indices `idx` only (then the result is in idx order); p is restored.
template <class F>
std::vector<double> fd_gradient(std::vector<double>& p, F&& loss, const std::vector<size_t>* idx = nullptr) {
  const size_t n = idx ? idx->size() : p.size();
  std::vector<double> g(n);
  for (size_t k = 0; k < n; ++k) {
    const size_t i = idx ? (*idx)[k] : k;
    const double v = p[i], h = 1e-6 * std::max(1.0, std::fabs(v));
    p[i] = v + h;
    const double lp = loss();
    p[i] = v - h;
    const double lm = loss();
    p[i] = v;
    g[k] = (lp - lm) / (2 * h);
  }
  return g;
}

template <class G>
double rel_err(const G& g, const std::vector<double>& fd) {
  double num = 0, den = 0;
  for (size_t i = 0; i < fd.size(); ++i) {
    num += (g[i] - fd[i]) * (g[i] - fd[i]);
    den += fd[i] * fd[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Checks each tensor against its finite differences and reports the worst relative error.
class GradReport {
 public:
  explicit GradReport(std::string name) : name_(std::move(name)) {}
  ~GradReport() {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3g", worst_);
    ::testing::Test::RecordProperty("worst_rel_err", buf);
    std::printf("[grad] %-34s worst rel err %.3g (%s)\n", name_.c_str(), worst_, worst_tensor_.c_str());
  }
  template <class G>
  void check(const std::string& tensor, const G& g, const std::vector<double>& fd) {
    ASSERT_EQ(g.size(), fd.size()) << name_ << " " << tensor;
    const double e = rel_err(g, fd);
    double norm = 0;
    for (double v : fd) norm += v * v;
    EXPECT_LE(e, kGradTol) << name_ << ": " << tensor << " (‖g_fd‖ " << std::sqrt(norm) << ")";
    EXPECT_GT(norm, 0.0) << name_ << ": " << tensor << " has a zero gradient: nothing is checked";
    if (e > worst_) worst_ = e, worst_tensor_ = tensor;
    if (std::getenv("QSWEEP_GRAD_VERBOSE"))
      std::printf("[grad]   %-32s %-18s %zu entries rel err %.3g\n", name_.c_str(), tensor.c_str(), fd.size(), e);
  }

 private:
  std::string name_, worst_tensor_ = "-";
  double worst_ = 0;
};

// The fake quantizer (train/grad_ops.h) with everything that rounds or clamps frozen at the point
// (W0, s0, z0): inside the clamp range ŵ = w + (round(w0/s0) − w0/s0)·s, outside
// ŵ = (q_bound − z − (round(z0) − z0))·s. It equals the quantizer at that point, and its
// ordinary derivatives are the straight-through ones.
struct FrozenQuant {
  int out = 0, in = 0, group = 0;
  std::vector<double> off_w, bound, off_z;
  std::vector<char> is_inside;
  int inside = 0, clamped_low = 0, clamped_high = 0;

  FrozenQuant() = default;
  FrozenQuant(const double* W, const double* s, const double* z, int out_, int in_, int group_, int bits)
      : out(out_), in(in_), group(group_) {
    const int ng = (in + group - 1) / group;  // a last group may be shorter
    const double qmax = (1 << bits) - 1;
    off_w.resize(size_t(out) * in), bound.resize(off_w.size()), is_inside.resize(off_w.size());
    off_z.resize(size_t(out) * ng);
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) {
        const size_t i = size_t(r) * in + c, gi = size_t(r) * ng + c / group;
        const double ws = W[i] / s[gi], rz = std::nearbyint(z[gi]);
        const double rq = std::nearbyint(ws) + rz;
        off_w[i] = std::nearbyint(ws) - ws;
        off_z[gi] = rz - z[gi];
        is_inside[i] = rq >= 0 && rq <= qmax;
        bound[i] = rq < 0 ? 0 : qmax;
        (is_inside[i] ? inside : rq < 0 ? clamped_low : clamped_high) += 1;
      }
  }
  void apply(const double* W, const double* s, const double* z, double* Wq) const {
    const int ng = (in + group - 1) / group;  // a last group may be shorter
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) {
        const size_t i = size_t(r) * in + c, gi = size_t(r) * ng + c / group;
        Wq[i] = is_inside[i] ? W[i] + off_w[i] * s[gi] : (bound[i] - z[gi] - off_z[gi]) * s[gi];
      }
  }
};

}  // namespace qsweep::test
