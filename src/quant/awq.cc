// awq.cc — AWQ scale search and the Gram-based output error.
#include "quant/awq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/device.h"
#include "core/error.h"

#ifdef QSWEEP_WITH_CUDA
#include <exception>
#include <memory>
#include <mutex>

#include "qsweep/cuda/awq_clip.h"
#include "qsweep/cuda/gram_error.h"
#endif

namespace qsweep {

namespace {

// Σ over rows of dᵀ G d, d = w − ŵ, in fp64: per block of kBlock rows one (threaded) dgemm D·G,
// then each tile of kRows rows summed in element order and the tiles in order — fixed tiles, so
// the result does not depend on the thread count. Blocks of 256 rows, not a dgemm per 32-row
// tile: OpenBLAS packed the whole Gram for every tile (a 1B down_proj: 512 MB, 64 times). On a
// 2-core VM a 1b RTN cell's metrics went from 105 to 88 s (7.3 TFLOP of fp64 at ~83 GFLOP/s, near
// the cores' peak), with the same bits.
double output_sq_error_cpu(const float* w, const float* what, int out, int in, const std::vector<double>& gram) {
  constexpr int kRows = 32, kBlock = 8 * kRows;
  const int tiles = (out + kRows - 1) / kRows;
  std::vector<double> per_tile(static_cast<size_t>(tiles), 0.0);
  std::vector<double> d, dg;
  for (int b0 = 0; b0 < out; b0 += kBlock) {
    const int bn = std::min(kBlock, out - b0);
    d.resize(static_cast<size_t>(bn) * in);
    dg.resize(d.size());
#pragma omp parallel for schedule(static)
    for (int r = 0; r < bn; ++r)
      for (int c = 0; c < in; ++c) {
        const size_t k = static_cast<size_t>(b0 + r) * in + c;
        d[static_cast<size_t>(r) * in + c] = static_cast<double>(w[k]) - static_cast<double>(what[k]);
      }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bn, in, in, 1.0, d.data(), in, gram.data(), in, 0.0,
                dg.data(), in);
    const int t0 = b0 / kRows, t1 = (b0 + bn + kRows - 1) / kRows;
#pragma omp parallel for schedule(static)
    for (int t = t0; t < t1; ++t) {
      const size_t k0 = static_cast<size_t>(t * kRows - b0) * in,
                   k1 = static_cast<size_t>(std::min(kRows, out - t * kRows) + t * kRows - b0) * in;
      double s = 0;
      for (size_t k = k0; k < k1; ++k) s += d[k] * dg[k];
      per_tile[static_cast<size_t>(t)] = s;
    }
  }
  double total = 0;
  for (double v : per_tile) total += v;  // tile order: fixed
  return total;
}

}  // namespace

double output_sq_error(const float* w, const float* what, int out, int in, const std::vector<double>& gram) {
#ifdef QSWEEP_WITH_CUDA
  // On a GPU: cuda::GramError (d·G by cuBLAS dgemm in fixed row tiles, summed in tile order), the
  // same fp64 products in another summation order. The down_proj's 8192-wide Gram of a 1B model
  // is 2·out·in² = 275 GFLOP in fp64 per layer: seconds on a node's cores, a fraction of one there
  // (the Gram's upload, 512 MB, included).
  if (current_device().kind == DeviceKind::Cuda) {
    static std::mutex gpu;  // layers on several threads take turns on the rank's GPU
    std::lock_guard<std::mutex> lock(gpu);
    try {
      cuda::GramError dev(current_device().ordinal, gram.data(), in);
      return dev.error(w, what, out);
    } catch (const std::exception& e) {
      QS_THROW("cuda output error (" << out << " x " << in << "): " << e.what());
    }
  }
#endif
  return output_sq_error_cpu(w, what, out, in, gram);
}

double awq_clip(float* w, int out, int in, const std::vector<double>& gram, const GridSpec& grid,
                int n_grid) {
  const int G = grid.group_len(in), ng = grid.groups(in);
  // The search: per (row, group) the index i of the threshold with the least output error.
  std::vector<int32_t> best_i(static_cast<size_t>(out) * ng, 0);
#ifdef QSWEEP_WITH_CUDA
  if (current_device().kind == DeviceKind::Cuda) {  // the group's diagonal Gram blocks, packed
    std::vector<double> blocks;
    for (int g = 0; g < ng; ++g) {
      const int n = std::min(G, in - g * G);
      for (int a = 0; a < n; ++a) {
        const double* ga = gram.data() + static_cast<size_t>(g * G + a) * in + static_cast<size_t>(g) * G;
        blocks.insert(blocks.end(), ga, ga + n);
      }
    }
    try {
      cuda::awq_clip_search(current_device().ordinal, w, out, in, blocks, G, grid.bits, grid.sym, n_grid, best_i.data());
    } catch (const std::exception& e) {
      QS_THROW("cuda AWQ clipping (" << out << " x " << in << "): " << e.what());
    }
  } else
#endif
  {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < out; ++r) {
      std::vector<float> cur(G);
      std::vector<double> d(G);
      for (int g = 0; g < ng; ++g) {
        const int n = std::min(G, in - g * G);  // the last group is shorter when G does not divide in
        const float* wg = w + static_cast<size_t>(r) * in + static_cast<size_t>(g) * G;
        float amax = 0;
        for (int c = 0; c < n; ++c) amax = std::max(amax, std::fabs(wg[c]));
        double best = INFINITY;
        int best_k = 0;
        for (int i = 0; i < n_grid / 2; ++i) {
          const float mx = amax * (1.0f - static_cast<float>(i) / n_grid);
          for (int c = 0; c < n; ++c) cur[c] = std::min(mx, std::max(-mx, wg[c]));
          const GroupParams p = grid_params(cur.data(), n, grid);
          for (int c = 0; c < n; ++c) d[c] = static_cast<double>(grid_value(grid_code(cur[c], p, grid.bits), p)) - wg[c];
          double e = 0;
          for (int a = 0; a < n; ++a) {
            const double* ga = gram.data() + static_cast<size_t>(g * G + a) * in + static_cast<size_t>(g) * G;
            double t = 0;
            for (int b = 0; b < n; ++b) t += ga[b] * d[b];
            e += d[a] * t;
          }
          if (e < best) {
            best = e;
            best_k = i;
          }
        }
        best_i[static_cast<size_t>(r) * ng + g] = best_k;
      }
    }
  }
  // The clipping itself, and the mean shrink (rows summed in order).
  std::vector<double> shrink_sum(static_cast<size_t>(out), 0.0);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < out; ++r)
    for (int g = 0; g < ng; ++g) {
      const int n = std::min(G, in - g * G);
      float* wg = w + static_cast<size_t>(r) * in + static_cast<size_t>(g) * G;
      float amax = 0;
      for (int c = 0; c < n; ++c) amax = std::max(amax, std::fabs(wg[c]));
      const int i = best_i[static_cast<size_t>(r) * ng + g];
      const float best_max = amax * (1.0f - static_cast<float>(i) / n_grid);  // the search's threshold i
      for (int c = 0; c < n; ++c) wg[c] = std::min(best_max, std::max(-best_max, wg[c]));
      shrink_sum[r] += static_cast<double>(i) / n_grid;
    }
  double total = 0;
  for (double v : shrink_sum) total += v;
  return total / (static_cast<double>(out) * ng);
}

void awq_apply_scales(BlockWeights& w, BlockInput input, const std::vector<float>& s) {
  auto scale_cols = [&](Linear l) {
    float* m = w.linear(l);
    const int out = w.out_features(l), in = w.in_features(l);
    QS_ASSERT(static_cast<int>(s.size()) == in, "AWQ scales width");
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) m[static_cast<size_t>(r) * in + c] *= s[c];
  };
  auto scale_rows_inv = [&](Linear l) {
    float* m = w.linear(l);
    const int out = w.out_features(l), in = w.in_features(l);
    QS_ASSERT(static_cast<int>(s.size()) == out, "AWQ scales height");
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) m[static_cast<size_t>(r) * in + c] /= s[r];
  };
  switch (input) {
    case BlockInput::Qkv:
      for (size_t c = 0; c < s.size(); ++c) w.input_norm[c] /= s[c];
      scale_cols(Linear::Q); scale_cols(Linear::K); scale_cols(Linear::V);
      break;
    case BlockInput::GateUp:
      for (size_t c = 0; c < s.size(); ++c) w.post_norm[c] /= s[c];
      scale_cols(Linear::Gate); scale_cols(Linear::Up);
      break;
    case BlockInput::Down:
      QS_ASSERT(w.gate_up_bias.empty(), "AWQ folding into up_proj with a bias is not supported");
      scale_rows_inv(Linear::Up);
      scale_cols(Linear::Down);
      break;
    case BlockInput::O:
      QS_ASSERT(w.qkv_bias.empty(), "AWQ folding into v_proj with a bias is not supported");
      scale_rows_inv(Linear::V);
      scale_cols(Linear::O);
      break;
  }
}

AwqSearch awq_search(const std::vector<const float*>& weights, const std::vector<int>& outs, int in,
                     const std::vector<double>& gram, const std::vector<double>& salience,
                     const std::vector<GridSpec>& grids, int n_grid) {
  QS_CHECK(n_grid >= 1, "--awq-grid must be at least 1");
#ifdef QSWEEP_WITH_CUDA
  // On a GPU each candidate runs there (scaled RTN, the CPU's ŵ bit for bit, then d·G·dᵀ), the
  // Gram and the layers' weights uploaded once for the whole search; layers on several threads
  // take turns on the rank's GPU.
  static std::mutex gpu;
  std::unique_lock<std::mutex> lock(gpu, std::defer_lock);
  std::unique_ptr<cuda::GramError> dev;
  if (current_device().kind == DeviceKind::Cuda) {
    lock.lock();
    try {
      dev = std::make_unique<cuda::GramError>(current_device().ordinal, gram.data(), in);
      for (size_t k = 0; k < weights.size(); ++k) dev->add_weights(weights[k], outs[k]);
    } catch (const std::exception& e) {
      QS_THROW("cuda AWQ search (" << in << " input channels): " << e.what());
    }
  }
  auto device_candidate = [&](size_t k, const std::vector<float>& s) {
    try {
      return dev->scaled_rtn_error(static_cast<int>(k), s.data(), grids[k].bits, grids[k].group_size, grids[k].sym);
    } catch (const std::exception& e) {
      QS_THROW("cuda AWQ search (" << outs[k] << " x " << in << "): " << e.what());
    }
  };
#endif
  AwqSearch best;
  double best_err = INFINITY;
  std::vector<float> s(in), scaled, back;
  for (int g = 0; g < n_grid; ++g) {
    const double alpha = static_cast<double>(g) / n_grid;
    float mx = 0, mn = INFINITY;
    for (int c = 0; c < in; ++c) {
      s[c] = std::max(static_cast<float>(std::pow(salience[c], alpha)), 1e-4f);
      mx = std::max(mx, s[c]);
      mn = std::min(mn, s[c]);
    }
    const float norm = std::sqrt(mx * mn);
    for (float& v : s) v /= norm;
    double err = 0;
    for (size_t k = 0; k < weights.size(); ++k) {
#ifdef QSWEEP_WITH_CUDA
      if (dev) {
        err += device_candidate(k, s);
        continue;
      }
#endif
      const int out = outs[k];
      scaled.assign(weights[k], weights[k] + static_cast<size_t>(out) * in);
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < in; ++c) scaled[static_cast<size_t>(r) * in + c] *= s[c];
      const QuantizedLinear q = quantize_rtn(scaled.data(), out, in, grids[k]);
      back = q.dequantize();
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < in; ++c) back[static_cast<size_t>(r) * in + c] /= s[c];
      err += output_sq_error(weights[k], back.data(), out, in, gram);
    }
    best.errors.push_back(err);
    if (err < best_err) {
      best_err = err;
      best.alpha = alpha;
      best.scales = s;
    }
  }
  return best;
}

}  // namespace qsweep
