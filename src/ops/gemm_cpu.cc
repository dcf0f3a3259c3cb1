// ops/gemm_cpu.cc — the tiled, thread-count-independent GEMM of ops/gemm.h on OpenBLAS.
#include "ops/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <iterator>

#include "core/error.h"

namespace qsweep {

namespace {
inline CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }
inline void blas_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                      int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void blas_gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B,
                      int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline int as_int(int64_t v) {
  QS_ASSERT(v >= 0 && v <= INT_MAX, "matrix dimension " << v << " out of BLAS int range");
  return static_cast<int>(v);
}
// Products under this many multiply-adds skip the parallel region (its start costs more than
// they do); it changes no result.
constexpr int64_t kParallelMinWork = int64_t(1) << 18;
}  // namespace

GemmTile gemm_tile(int64_t M, int64_t N) {
  static constexpr GemmTile kTiles[] = {{512, 1024}, {256, 1024}, {256, 512}, {128, 512}};
  for (const GemmTile& t : kTiles)
    if (((M + t.m - 1) / t.m) * ((N + t.n - 1) / t.n) >= kGemmMinTiles) return t;
  return kTiles[std::size(kTiles) - 1];
}

template <typename T>
void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS leaves C·beta; make that explicit for beta = 0 (C may hold garbage)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : C[i * ldc + j] * beta;
    return;
  }
  const GemmTile tile = gemm_tile(M, N);
  const int64_t tm = (M + tile.m - 1) / tile.m, tn = (N + tile.n - 1) / tile.n;
  const int k = as_int(K), la = as_int(lda), lb = as_int(ldb), lc = as_int(ldc);
#pragma omp parallel for schedule(dynamic, 1) collapse(2) if (M * N * K >= kParallelMinWork)
  for (int64_t i = 0; i < tm; ++i)
    for (int64_t j = 0; j < tn; ++j) {
      const int64_t m0 = i * tile.m, n0 = j * tile.n;
      const int mm = static_cast<int>(std::min(tile.m, M - m0)), nn = static_cast<int>(std::min(tile.n, N - n0));
      // Row m0 of op(A) and column n0 of op(B).
      const T* a = trans_a ? A + m0 : A + m0 * lda;
      const T* b = trans_b ? B + n0 * ldb : B + n0;
      blas_gemm(trans_a, trans_b, mm, nn, k, alpha, a, la, b, lb, beta, C + m0 * ldc + n0, lc);
    }
}

template void gemm_tiled<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                int64_t, float, float*, int64_t);
template void gemm_tiled<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                 const double*, int64_t, double, double*, int64_t);

}  // namespace qsweep
