// gptq.cc — GPTQ in fp64 with LAPACK Cholesky (dpotrf/dpotri); on a GPU the factorisation and the
// column loop run in gptq_cuda.cc.
#include "quant/gptq.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/device.h"
#include "core/error.h"
#include "quant/gptq_cuda.h"

namespace qsweep {

namespace {
// H⁻¹'s upper Cholesky factor of (H + λI); false when a factorisation fails. The buffer is
// row-major; LAPACK is called column-major with the triangle names swapped (a symmetric matrix's
// row-major lower triangle is its column-major upper one), which spares LAPACKE's three
// full-matrix transposes — half the time of this step on large layers.
bool inverse_cholesky_upper(std::vector<double> h, int n, double lambda, std::vector<double>& u) {
  for (int i = 0; i < n; ++i) h[static_cast<size_t>(i) * n + i] += lambda;
  if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, h.data(), n) != 0) return false;  // row-major L
  if (LAPACKE_dpotri(LAPACK_COL_MAJOR, 'U', n, h.data(), n) != 0) return false;  // row-major L
  for (int i = 0; i < n; ++i)  // mirror the lower triangle (H⁻¹) to the upper
    for (int j = i + 1; j < n; ++j) h[static_cast<size_t>(i) * n + j] = h[static_cast<size_t>(j) * n + i];
  if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, h.data(), n) != 0) return false;  // row-major U
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) h[static_cast<size_t>(i) * n + j] = 0.0;
  u = std::move(h);
  return true;
}
}  // namespace

GptqResult gptq_quantize(const float* w_in, int out, int in, const std::vector<double>& xtx,
                         double tokens, const GridSpec& grid, const GptqOptions& opt) {
  QS_CHECK(tokens > 0, "GPTQ needs calibration tokens");
  QS_ASSERT(xtx.size() == static_cast<size_t>(in) * in, "Hessian size");
  const size_t N = static_cast<size_t>(in);
  std::vector<double> H(N * N);
  for (size_t k = 0; k < H.size(); ++k) H[k] = 2.0 * xtx[k] / tokens;
  std::vector<double> W(w_in, w_in + static_cast<size_t>(out) * in);
  GptqResult res;
  for (int i = 0; i < in; ++i)
    if (H[i * N + i] == 0.0) {
      H[i * N + i] = 1.0;
      for (int r = 0; r < out; ++r) W[static_cast<size_t>(r) * in + i] = 0.0;
      ++res.dead_columns;
    }
  const int G = grid.group_len(in), ng = grid.groups(in);
  QuantizedLinear& q = res.q;
  q.out = out;
  q.in = in;
  q.grid = grid;
  q.codes.assign(static_cast<size_t>(out) * in, 0);
  q.scales.assign(static_cast<size_t>(out) * ng, 0.0f);
  q.zeros.assign(q.scales.size(), 0);

  // Static groups (act-order): grids from W in original column order, before any update.
  auto group_params = [&](const std::vector<double>& M, int ld, int c0, int n, int r) {
    std::vector<float> tmp(n);
    for (int c = 0; c < n; ++c) tmp[c] = static_cast<float>(M[static_cast<size_t>(r) * ld + c0 + c]);
    return grid_params(tmp.data(), n, grid);
  };
  std::vector<int> perm(in);
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order) {
    for (int r = 0; r < out; ++r)
      for (int g = 0; g < ng; ++g) {
        const GroupParams p = group_params(W, in, g * G, std::min(G, in - g * G), r);
        q.scales[static_cast<size_t>(r) * ng + g] = p.scale;
        q.zeros[static_cast<size_t>(r) * ng + g] = p.zero;
      }
    std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) { return H[a * N + a] > H[b * N + b]; });
    std::vector<double> Wp(W.size()), Hp(H.size());
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) Wp[static_cast<size_t>(r) * in + c] = W[static_cast<size_t>(r) * in + perm[c]];
    for (int a = 0; a < in; ++a)
      for (int b = 0; b < in; ++b) Hp[a * N + b] = H[perm[a] * N + perm[b]];
    W.swap(Wp);
    H.swap(Hp);
  } else if (grid.group_size < 0) {
    for (int r = 0; r < out; ++r) {  // one grid per row from the whole (dead-zeroed) row
      const GroupParams p = group_params(W, in, 0, in, r);
      q.scales[r] = p.scale;
      q.zeros[r] = p.zero;
    }
  }

  double mean_diag = 0;
  for (int i = 0; i < in; ++i) mean_diag += H[i * N + i];
  mean_diag /= in;
  if (current_device().kind == DeviceKind::Cuda) {  // the same steps on the rank's GPU (gptq_cuda.h)
    res.damp_used = gptq_columns_cuda(current_device().ordinal, W, H, out, in, mean_diag, perm, grid, opt, q);
    if (opt.act_order) {
      q.g_idx.resize(in);
      for (int c = 0; c < in; ++c) q.g_idx[c] = grid.group_size < 0 ? 0 : c / G;
    }
    return res;
  }
  std::vector<double> U;
  double damp = opt.damp;
  bool ok = false;
  for (int attempt = 0; attempt < 6 && !ok; ++attempt, damp *= 10)
    ok = inverse_cholesky_upper(H, in, damp * mean_diag, U);
  QS_CHECK(ok, "GPTQ: the damped Hessian is not positive definite even with damping "
                   << damp / 10 << " x mean(diag H); the calibration inputs are degenerate");
  res.damp_used = damp / 10;
  H.clear();
  H.shrink_to_fit();  // U replaces it: one in x in matrix besides the shared Σxxᵀ, not two

  const int B = std::max(1, opt.block_size);
  std::vector<double> err(static_cast<size_t>(out) * B);
  for (int i1 = 0; i1 < in; i1 += B) {
    const int i2 = std::min(in, i1 + B), count = i2 - i1;
    // Grids of groups starting in this block, from W as it stands now (block start).
    for (int i = 0; i < count; ++i) {
      const int col = i1 + i;
      if (!opt.act_order && grid.group_size > 0 && col % G == 0) {
        const int g = col / G;
        for (int r = 0; r < out; ++r) {
          const GroupParams p = group_params(W, in, col, std::min(G, in - col), r);
          q.scales[static_cast<size_t>(r) * ng + g] = p.scale;
          q.zeros[static_cast<size_t>(r) * ng + g] = p.zero;
        }
      }
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < out; ++r) {
      double* wr = W.data() + static_cast<size_t>(r) * in;
      double* er = err.data() + static_cast<size_t>(r) * B;
      for (int i = 0; i < count; ++i) {
        const int col = i1 + i;
        const int g = opt.act_order ? (grid.group_size < 0 ? 0 : perm[col] / G) : (grid.group_size < 0 ? 0 : col / G);
        const GroupParams p{q.scales[static_cast<size_t>(r) * ng + g], q.zeros[static_cast<size_t>(r) * ng + g]};
        const float wv = static_cast<float>(wr[col]);
        const int code = grid_code(wv, p, grid.bits);
        q.codes[static_cast<size_t>(r) * in + (opt.act_order ? perm[col] : col)] = static_cast<uint8_t>(code);
        const double e = (wr[col] - static_cast<double>(grid_value(code, p))) / U[col * N + col];
        const double* urow = U.data() + col * N;
        for (int j = col + 1; j < i2; ++j) wr[j] -= e * urow[j];
        er[i] = e;
      }
    }
    // W[:, i2:] -= Err1 · U[i1:i2, i2:], in fixed row tiles (deterministic for any thread count).
    if (i2 < in) {
      constexpr int kRows = 256;  // fewer re-packs of U's panel; the 128-long sums are never split
      const int tiles = (out + kRows - 1) / kRows;
#pragma omp parallel for schedule(dynamic, 1)
      for (int t = 0; t < tiles; ++t) {
        const int r0 = t * kRows, rn = std::min(kRows, out - r0);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rn, in - i2, count, -1.0,
                    err.data() + static_cast<size_t>(r0) * B, B, U.data() + i1 * N + i2, static_cast<int>(N),
                    1.0, W.data() + static_cast<size_t>(r0) * in + i2, in);
      }
    }
  }
  if (opt.act_order) {
    q.g_idx.resize(in);
    for (int c = 0; c < in; ++c) q.g_idx[c] = grid.group_size < 0 ? 0 : c / G;
  }
  return res;
}

}  // namespace qsweep
