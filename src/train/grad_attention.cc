// grad_attention.cc — causal grouped-query attention with its saved probabilities, and the
// backward. Per (sequence, query head): S = scale·Q·Kᵀ (scale 1/sqrt(head_dim)), a masked row
// softmax (query i sees keys j <= i, and j > i − window with a sliding window, as
// model/cpu_ops.cc's `attention`), O = P·V. Backward, with the same P:
//   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),  dQ = scale·dS·K,  dK += scale·dSᵀ·Q,  dV += Pᵀ·dO,
// dK and dV summed over the query heads of a kv head in increasing head order. Threads share out
// (sequence, head) pairs in the forward and (sequence, kv head) pairs in the backward.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/gemm.h"
#include "train/grad_ops.h"

namespace qsweep {

namespace {
void check_dims(const AttnDims& a) {
  QS_ASSERT(a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0,
            a.n_heads << " query heads for " << a.n_kv_heads << " kv heads");
  QS_ASSERT(a.sliding_window >= 0, "sliding window " << a.sliding_window);
}
// Visible keys of query i: [lo, i].
inline int key_lo(const AttnDims& a, int i) {
  return a.sliding_window > 0 ? std::max(0, i - a.sliding_window + 1) : 0;
}
// Threads only for enough work: a parallel region costs more than a tiny attention.
inline bool worth_threads(const AttnDims& a) {
  return int64_t(a.n_seq) * a.n_heads * a.seq_len * a.seq_len * a.head_dim >= (int64_t(1) << 18);
}
}  // namespace

template <typename T>
void attention_forward(const T* q, const T* k, const T* v, int64_t ld, T* out, T* probs,
                       const AttnDims& a) {
  check_dims(a);
  const int L = a.seq_len, d = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int ld_i = static_cast<int>(ld);
  const int64_t ld_out = int64_t(a.n_heads) * d;
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  const int64_t tasks = int64_t(a.n_seq) * a.n_heads;
#pragma omp parallel for schedule(dynamic, 1) if (worth_threads(a))
  for (int64_t task = 0; task < tasks; ++task) {
    const int seq = static_cast<int>(task / a.n_heads), h = static_cast<int>(task % a.n_heads);
    const int64_t row0 = int64_t(seq) * L;
    const T* qh = q + row0 * ld + int64_t(h) * d;
    const T* kh = k + row0 * ld + int64_t(h / group) * d;
    const T* vh = v + row0 * ld + int64_t(h / group) * d;
    T* P = probs + task * L * L;
    gemm_tiled<T>(false, true, L, L, d, scale, qh, ld_i, kh, ld_i, T(0), P, L);
    for (int i = 0; i < L; ++i) {
      T* row = P + int64_t(i) * L;
      const int lo = key_lo(a, i), hi = i + 1;
      T mx = row[lo];
      for (int j = lo + 1; j < hi; ++j) mx = std::max(mx, row[j]);
      T sum = 0;
      for (int j = lo; j < hi; ++j) sum += row[j] = std::exp(row[j] - mx);
      const T inv = T(1) / sum;
      for (int j = lo; j < hi; ++j) row[j] *= inv;
      std::fill(row, row + lo, T(0));
      std::fill(row + hi, row + L, T(0));
    }
    gemm_tiled<T>(false, false, L, d, L, T(1), P, L, vh, ld_i, T(0),
               out + row0 * ld_out + int64_t(h) * d, static_cast<int>(ld_out));
  }
}

template <typename T>
void attention_backward(const T* q, const T* k, const T* v, int64_t ld, const T* probs,
                        const T* dout, T* dq, T* dk, T* dv, const AttnDims& a) {
  check_dims(a);
  const int L = a.seq_len, d = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int ld_i = static_cast<int>(ld);
  const int ld_out = a.n_heads * d;
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  // One task per (sequence, kv head): its query heads in increasing order, so dK and dV are
  // summed in a fixed order whatever the thread count.
  const int64_t tasks = int64_t(a.n_seq) * a.n_kv_heads;
#pragma omp parallel if (worth_threads(a))
  {
    std::vector<T> dS(size_t(L) * L);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int seq = static_cast<int>(task / a.n_kv_heads), kvh = static_cast<int>(task % a.n_kv_heads);
      const int64_t row0 = int64_t(seq) * L, kvo = row0 * ld + int64_t(kvh) * d;
      for (int i = 0; i < L; ++i) {
        std::fill(dk + kvo + i * ld, dk + kvo + i * ld + d, T(0));
        std::fill(dv + kvo + i * ld, dv + kvo + i * ld + d, T(0));
      }
      for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
        const int64_t qo = row0 * ld + int64_t(h) * d;
        const T* P = probs + (int64_t(seq) * a.n_heads + h) * L * L;
        const T* dO = dout + row0 * ld_out + int64_t(h) * d;
        // dP = dO·Vᵀ, then dS in place.
        gemm_tiled<T>(false, true, L, L, d, T(1), dO, ld_out, v + kvo, ld_i, T(0), dS.data(), L);
        for (int i = 0; i < L; ++i) {
          const T* p = P + int64_t(i) * L;
          T* ds = dS.data() + int64_t(i) * L;
          const int lo = key_lo(a, i), hi = i + 1;
          T dot = 0;
          for (int j = lo; j < hi; ++j) dot += p[j] * ds[j];
          for (int j = 0; j < L; ++j) ds[j] = (j >= lo && j < hi) ? p[j] * (ds[j] - dot) : T(0);
        }
        gemm_tiled<T>(false, false, L, d, L, scale, dS.data(), L, k + kvo, ld_i, T(0), dq + qo, ld_i);
        gemm_tiled<T>(true, false, L, d, L, scale, dS.data(), L, q + qo, ld_i, T(1), dk + kvo, ld_i);
        gemm_tiled<T>(true, false, L, d, L, T(1), P, L, dO, ld_out, T(1), dv + kvo, ld_i);
      }
    }
  }
}

template void attention_forward<float>(const float*, const float*, const float*, int64_t, float*,
                                       float*, const AttnDims&);
template void attention_forward<double>(const double*, const double*, const double*, int64_t,
                                        double*, double*, const AttnDims&);
template void attention_backward<float>(const float*, const float*, const float*, int64_t,
                                        const float*, const float*, float*, float*, float*,
                                        const AttnDims&);
template void attention_backward<double>(const double*, const double*, const double*, int64_t,
                                         const double*, const double*, double*, double*, double*,
                                         const AttnDims&);

}  // namespace qsweep
