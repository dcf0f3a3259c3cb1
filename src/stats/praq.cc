// praq.cc — the risk-aware post-activation importance (see praq.h).
#include "stats/praq.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "model/forward.h"
#ifdef QSWEEP_WITH_CUDA
#include "qsweep/cuda/praq.h"
#endif

namespace qsweep {

namespace {
// The standard-normal draws of (block, chunk, draw d), in row-major order of the chunk's elements:
// seeded by those only, so the importance is the same on any rank count and on either device.
class Draws {
 public:
  Draws(const PraqSpec& s, int64_t chunk, int d)
      : rng_(s.seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(s.block + 1)) ^
             (0xbf58476d1ce4e5b9ULL * static_cast<uint64_t>(chunk + 1)) ^ (0x94d049bb133111ebULL * static_cast<uint64_t>(d + 1))) {}
  double next() { return nd_(rng_); }

 private:
  std::mt19937_64 rng_;
  std::normal_distribution<double> nd_{0.0, 1.0};
};
}  // namespace

PraqAccumulator::PraqAccumulator(const PraqSpec& s) : s_(s) {
  QS_ASSERT(s.w_gate && s.w_up && s.inter > 0 && s.hidden > 0, "PRAQ spec");
  const size_t H = static_cast<size_t>(s.hidden), I = static_cast<size_t>(s.inter);
  gsq_t_.resize(H * I);
  usq_t_.resize(H * I);
  denom_.assign(H, 0.0);
  for (size_t i = 0; i < I; ++i)
    for (size_t j = 0; j < H; ++j) {
      const float g = s.w_gate[i * H + j], u = s.w_up[i * H + j];
      gsq_t_[j * I + i] = g * g;
      usq_t_[j * I + i] = u * u;
      denom_[j] += static_cast<double>(g) * g + static_cast<double>(u) * u;
    }
}

void PraqAccumulator::add(const float* x, int64_t rows, int64_t chunk, double* acc) {
  const int H = s_.hidden, I = s_.inter;
  const int k = s_.noise_std > 0 ? s_.samples : 1;
  std::vector<float> xt(static_cast<size_t>(rows) * H), g(static_cast<size_t>(rows) * I), u(g.size()), ag(g.size()),
      au(g.size()), r(xt.size());
  for (int d = 0; d < k; ++d) {
    xt.assign(x, x + static_cast<size_t>(rows) * H);
    if (s_.noise_std > 0) {  // serial, in row order: the draws do not depend on threads or ranks
      Draws nd(s_, chunk, d);
      for (int64_t t = 0; t < rows; ++t) {
        float* xr = xt.data() + t * H;
        double ss = 0;
        for (int j = 0; j < H; ++j) ss += static_cast<double>(xr[j]) * xr[j];
        const double sd = s_.noise_std * std::sqrt(ss / H);
        for (int j = 0; j < H; ++j) xr[j] = static_cast<float>(xr[j] + sd * nd.next());
      }
    }
    gemm_xwt(xt.data(), s_.w_gate, g.data(), rows, I, H, 0.0f, I);
    gemm_xwt(xt.data(), s_.w_up, u.data(), rows, I, H, 0.0f, I);
    const int64_t n = rows * I;
#pragma omp parallel for simd schedule(static)
    for (int64_t e = 0; e < n; ++e) {
      const double gv = g[e], sg = 1.0 / (1.0 + std::exp(-gv));
      const double silu = gv * sg, dsilu = sg * (1.0 + gv * (1.0 - sg));
      const double a = dsilu * u[e];
      ag[e] = static_cast<float>(a * a);
      au[e] = static_cast<float>(silu * silu);
    }
    gemm_xwt(ag.data(), gsq_t_.data(), r.data(), rows, H, I, 0.0f, H);
    gemm_xwt(au.data(), usq_t_.data(), r.data(), rows, H, I, 1.0f, H);
    for (int64_t t = 0; t < rows; ++t) {  // fixed order: the sums do not depend on threads
      const float* xr = xt.data() + t * H;
      const float* rr = r.data() + t * H;
      for (int j = 0; j < H; ++j)
        acc[j] += static_cast<double>(xr[j]) * xr[j] * (static_cast<double>(rr[j]) / denom_[j]) / k;
    }
  }
}

void PraqAccumulator::add_device(const float* x_device, int64_t rows, int64_t chunk, int ordinal, double* acc) {
#ifdef QSWEEP_WITH_CUDA
  if (!dev_)
    dev_ = std::make_shared<cuda::PraqDevice>(ordinal, s_.w_gate, s_.w_up, gsq_t_.data(), usq_t_.data(), denom_.data(),
                                              s_.inter, s_.hidden);
  const int H = s_.hidden;
  const int k = s_.noise_std > 0 ? s_.samples : 1;
  const int64_t tile = cuda::PraqDevice::kMaxRows;
  std::vector<double> z(s_.noise_std > 0 ? static_cast<size_t>(std::min(rows, tile)) * H : 0);
  for (int d = 0; d < k; ++d) {
    Draws nd(s_, chunk, d);  // continues across the tiles: the CPU's row-major order
    for (int64_t t0 = 0; t0 < rows; t0 += tile) {
      const int64_t n = std::min(tile, rows - t0);
      if (!z.empty())
        for (size_t e = 0; e < static_cast<size_t>(n) * H; ++e) z[e] = nd.next();
      dev_->add_draw(x_device + t0 * H, n, z.empty() ? nullptr : z.data(), s_.noise_std, k, acc);
    }
  }
#else
  (void)x_device, (void)rows, (void)chunk, (void)ordinal, (void)acc;
  QS_ASSERT(false, "PRAQ on device activations in a build without CUDA");
#endif
}

}  // namespace qsweep
