// cpu_ops.cc — CPU operators. Attention runs one (sequence, head) pair per task: scores for a
// block of 64 queries against the keys up to the block's last query (causal: blocks above the
// diagonal are never computed), masked row softmax, then P·V — two small single-threaded sgemm
// calls per block (OpenBLAS's OpenMP build runs single-threaded inside a parallel region).
#include "model/cpu_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace qsweep {

namespace {

// exp via 2^n * e^r with n = round(x log2 e), r = x - n ln2 (Cody-Waite split), e^r by a
// degree-7 Taylor polynomial on |r| <= ln2/2 (truncation < 6e-9). Branch-free so loops vectorise.
// The clamp keeps NaN (std::max(NaN, lo) is NaN, std::max(lo, NaN) would be lo): a NaN logit or
// attention score must reach the result as NaN, never silently become e^-87.
inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.3365447505531f), 88.3762626647949f);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = std::fma(n, -0.693145751953125f, x);
  r = std::fma(n, -1.428606765330187045e-06f, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

}  // namespace

void exp_inplace(float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = fast_exp(x[i]);
}

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int cols, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < cols; ++c) ss += xr[c] * xr[c];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(cols) + eps);
#pragma omp simd
    for (int c = 0; c < cols; ++c) yr[c] = (xr[c] * inv) * w[c];
  }
}

void head_rmsnorm(float* x, int64_t ld, int64_t rows, int n_heads, int head_dim, const float* w,
                  float eps) {
  const int64_t tasks = rows * n_heads;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    float* xh = x + (t / n_heads) * ld + (t % n_heads) * head_dim;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < head_dim; ++c) ss += xh[c] * xh[c];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(head_dim) + eps);
#pragma omp simd
    for (int c = 0; c < head_dim; ++c) xh[c] = (xh[c] * inv) * w[c];
  }
}

void add_scaled(float* x, const float* y, float a, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i] * a;
}

void silu_mul(const float* gu, float* act, int64_t rows, int inter) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gu + r * 2 * inter;
    const float* u = g + inter;
    float* a = act + r * inter;
#pragma omp simd
    for (int i = 0; i < inter; ++i) a[i] = g[i] / (1.0f + fast_exp(-g[i])) * u[i];
  }
}

void add_bias(float* y, const float* b, int64_t rows, int cols, int64_t ld) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * ld;
#pragma omp simd
    for (int c = 0; c < cols; ++c) yr[c] += b[c];
  }
}

void attention(const float* q, const float* k, const float* v, int64_t ld_qkv, float* out,
               const AttentionShape& s) {
  constexpr int kQB = 64;
  const int T = s.seq_len, d = s.head_dim;
  const int group = s.n_heads / s.n_kv_heads;
  const int64_t ld_out = static_cast<int64_t>(s.n_heads) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t tasks = static_cast<int64_t>(s.n_seq) * s.n_heads;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(kQB) * T);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int seq = static_cast<int>(task / s.n_heads);
      const int h = static_cast<int>(task % s.n_heads);
      const int kvh = h / group;
      const int64_t row0 = static_cast<int64_t>(seq) * T;
      const float* qh = q + row0 * ld_qkv + static_cast<int64_t>(h) * d;
      const float* kh = k + row0 * ld_qkv + static_cast<int64_t>(kvh) * d;
      const float* vh = v + row0 * ld_qkv + static_cast<int64_t>(kvh) * d;
      float* oh = out + row0 * ld_out + static_cast<int64_t>(h) * d;
      double entropy = 0;
      for (int q0 = 0; q0 < T; q0 += kQB) {
        const int qn = std::min(kQB, T - q0);
        const int k_end = q0 + qn;  // keys [k_begin, k_end)
        const int k_begin = s.sliding_window > 0 ? std::max(0, q0 - s.sliding_window + 1) : 0;
        const int kn = k_end - k_begin;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, kn, d, scale,
                    qh + q0 * ld_qkv, static_cast<int>(ld_qkv), kh + k_begin * ld_qkv,
                    static_cast<int>(ld_qkv), 0.0f, scores.data(), kn);
        for (int i = 0; i < qn; ++i) {
          float* row = scores.data() + static_cast<size_t>(i) * kn;
          const int qpos = q0 + i;
          const int lo = s.sliding_window > 0 ? std::max(0, qpos - s.sliding_window + 1) - k_begin : 0;
          const int hi = qpos + 1 - k_begin;  // keys [lo, hi) are visible
          if (s.prefix_end) {  // packed: keys [0, pe) and [bb, hi); the gap between them is masked
            const int64_t r = row0 + qpos;
            const int pe = s.prefix_end[r], bb = s.branch_begin[r];
            float mx = row[bb];
            for (int j = 0; j < pe; ++j) mx = std::max(mx, row[j]);
            for (int j = bb + 1; j < hi; ++j) mx = std::max(mx, row[j]);
            float sum = 0.0f;
            for (int j = 0; j < pe; ++j) sum += row[j] = fast_exp(row[j] - mx);
            for (int j = bb; j < hi; ++j) sum += row[j] = fast_exp(row[j] - mx);
            const float inv = 1.0f / sum;
            for (int j = 0; j < pe; ++j) row[j] *= inv;
            std::fill(row + pe, row + bb, 0.0f);
            for (int j = bb; j < hi; ++j) row[j] *= inv;
            std::fill(row + hi, row + kn, 0.0f);
            continue;
          }
          float mx = row[lo];
          for (int j = lo + 1; j < hi; ++j) mx = std::max(mx, row[j]);
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int j = lo; j < hi; ++j) {
            const float e = fast_exp(row[j] - mx);
            row[j] = e;
            sum += e;
          }
          const float inv = 1.0f / sum;
#pragma omp simd
          for (int j = lo; j < hi; ++j) row[j] *= inv;
          if (s.entropy) {
            double e = 0;
            for (int j = lo; j < hi; ++j)
              if (row[j] > 0) e -= static_cast<double>(row[j]) * std::log(static_cast<double>(row[j]));
            entropy += e;
          }
          std::fill(row, row + lo, 0.0f);
          std::fill(row + hi, row + kn, 0.0f);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qn, d, kn, 1.0f, scores.data(), kn,
                    vh + k_begin * ld_qkv, static_cast<int>(ld_qkv), 0.0f, oh + q0 * ld_out,
                    static_cast<int>(ld_out));
      }
      if (s.entropy) s.entropy[task] = entropy;
    }
  }
}

void rows_nll(const float* logits, int64_t n, int vocab, const int32_t* targets, double* nll) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    const float* lr = logits + r * vocab;
    float mx = lr[0];
    for (int j = 1; j < vocab; ++j) mx = std::max(mx, lr[j]);
    // The sum in double: in float, the many tiny terms of a 49k-128k vocabulary fall below half
    // an ulp of the running lane sums and are lost, which biases every NLL low (SmolLM2: ppl
    // 8.4e-6 relative below the float64 reference; kjv-llama's 2k vocabulary hid it).
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < vocab; ++j) sum += static_cast<double>(fast_exp(lr[j] - mx));
    nll[r] = static_cast<double>(mx) + std::log(sum) - static_cast<double>(lr[targets[r]]);
  }
}

void rows_kl(const float* ref_logits, const float* logits, int64_t n, int vocab, double* kl,
             uint8_t* top1_agree) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    const float* a = ref_logits + r * vocab;
    const float* b = logits + r * vocab;
    int ia = 0, ib = 0;
    for (int j = 1; j < vocab; ++j) {
      if (a[j] > a[ia]) ia = j;
      if (b[j] > b[ib]) ib = j;
    }
    double sa = 0, sb = 0;
    for (int j = 0; j < vocab; ++j) {
      sa += std::exp(static_cast<double>(a[j]) - a[ia]);
      sb += std::exp(static_cast<double>(b[j]) - b[ib]);
    }
    const double lza = a[ia] + std::log(sa), lzb = b[ib] + std::log(sb);
    double k = 0;
    for (int j = 0; j < vocab; ++j) {
      const double lpa = a[j] - lza, lpb = b[j] - lzb;
      k += std::exp(lpa) * (lpa - lpb);
    }
    kl[r] = k;
    top1_agree[r] = ia == ib;
  }
}

}  // namespace qsweep
