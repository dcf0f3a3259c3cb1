// ops/gemm.h — the CPU path's one deterministic GEMM (the design review's "ops/<op>.h": one
// declaration per operation, the CPU implementation in gemm_cpu.cc; the CUDA twin is
// kernels/gemm.cu's sgemm_xwt, tested against it in test_cuda_kernels.cc).
//
// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major, cut into tiles chosen from the shape alone,
// each one single-threaded BLAS call over the whole K (OpenBLAS's OpenMP build runs
// single-threaded inside a parallel region), shared out dynamically over the threads. The tiling
// never depends on the thread count, so neither do the results: OpenBLAS's own threading splits
// a GEMM by thread count and changes the last bits. The forward pass (model/forward.h gemm_xwt)
// and the backward ops (train/grad_ops) both go through it.
#pragma once
#include <cstdint>

namespace qsweep {

// Tiles: the largest of 512×1024, 256×1024, 256×512 (rows × columns of C) that cuts the GEMM into
// at least kGemmMinTiles tiles, else 128×512. Bigger tiles pack each panel of A and B fewer times
// (a tile of m × n packs (m + n)·K values for 2·m·n·K FLOPs) — 512×1024 ran SmolLM2's eval 10%
// faster than 128×512 on 2 cores — but leave fewer tiles to share: a GEMM with fewer tiles than
// a rank's threads leaves threads idle, so on many-core nodes run more ranks of at most
// kGemmMinTiles threads (results depend on neither count).
struct GemmTile {
  int64_t m;
  int64_t n;
};
constexpr int64_t kGemmMinTiles = 8;
GemmTile gemm_tile(int64_t M, int64_t N);

// T = float or double. K == 0 gives beta · C (0 where beta == 0, whatever C held).
template <typename T>
void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace qsweep
