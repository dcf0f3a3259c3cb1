// flash_attention_body.cuh — the fused bf16 attention kernel's body (flash_attention.cu), written
// against CUDA's own names only (thread and block indices, __syncthreads/__syncwarp,
// __shfl_xor_sync, __ldg, WMMA fragments, bf16 rounding): nvcc compiles it into the kernel, and
// tests/flash_emulator.h runs the same source on the host with stand-ins for those names (a
// thread per CUDA thread, barriers, WMMA as 16×16 matrices that check alignment and ldm), so its
// tiling, masking and online softmax are tested on machines without a GPU.
//
// One thread block of 4 warps per (64-query tile, head, sequence), the longest tiles launched
// first. Each warp owns 16 query rows: its Q fragments stay in registers; per 64-key tile the
// block stages K and V in shared memory, each warp computes S = Q·Kᵀ (WMMA 16×16×16, fp32
// accumulators) into its own shared strip, runs the online softmax there (a lane pair per row:
// running max m and sum l in registers, the exponentials in the log2 domain, P rounded to bf16,
// the output strip rescaled by exp2(m_old − m_new)), and adds P·V to its fp32 output strip. The
// output strip lives in shared memory because WMMA's accumulator layout is opaque; the last step
// divides by l and writes fp32 rows. Tiles wholly after the tile's queries (and wholly before a
// sliding window) are never loaded.
#pragma once

#include <cmath>
#include <cstdint>

namespace qsweep::cuda::detail::flash {

constexpr int kBM = 64, kBN = 64, kWarps = 4;

template <int D>
struct Layout {
  static constexpr int LDK = D + 8;    // bf16 K / V / Q-staging rows (16-byte rows, 32-byte fragments)
  static constexpr int LDS = kBN + 4;  // fp32 score rows
  static constexpr int LDP = kBN + 8;  // bf16 probability rows
  static constexpr int LDO = D + 4;    // fp32 output rows
  static constexpr int kK = 0;
  static constexpr int kV = kK + kBN * LDK * 2;
  static constexpr int kS = kV + kBN * LDK * 2;
  static constexpr int kP = kS + kWarps * 16 * LDS * 4;
  static constexpr int kO = kP + kWarps * 16 * LDP * 2;
  static constexpr int kBytes = kO + kWarps * 16 * LDO * 4;
  static_assert(kV % 32 == 0 && kS % 32 == 0 && kP % 32 == 0 && kO % 32 == 0, "WMMA needs 32-byte alignment");
  static_assert((LDK * 2) % 16 == 0, "uint4 stores of K/V rows");
};

// Rows [r0, r0 + 64) of one head's D columns (src: the head's column 0 of sequence row 0, rows of
// stride ld) into dst [64, LDK]; rows at or past T are zero.
template <int D>
__device__ inline void load_tile(__nv_bfloat16* dst, const __nv_bfloat16* src, int64_t ld, int r0, int T) {
  constexpr int kVecs = D / 8;  // 16-byte vectors per row
  for (int i = threadIdx.x; i < kBN * kVecs; i += blockDim.x) {
    const int r = i / kVecs, c = (i % kVecs) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r0 + r < T) val = __ldg(reinterpret_cast<const uint4*>(src + static_cast<int64_t>(r0 + r) * ld + c));
    *reinterpret_cast<uint4*>(dst + r * Layout<D>::LDK + c) = val;
  }
}

// The block (blockIdx.x: the query tile counted from the last, y: the head, z: the sequence) on
// `smem` of Layout<D>::kBytes; q, k, v: sequence row 0 of the tensors (rows of stride ld), out:
// rows of stride ld_out; scale_log2 = log2(e)/sqrt(D).
template <int D>
__device__ inline void attention_block(unsigned char* smem, const __nv_bfloat16* q, const __nv_bfloat16* k,
                                       const __nv_bfloat16* v, int64_t ld, float* out, int64_t ld_out, int T, int group,
                                       int window, float scale_log2) {
  using namespace nvcuda;
  using L = Layout<D>;
  using bf16 = __nv_bfloat16;
  bf16* Ks = reinterpret_cast<bf16*>(smem + L::kK);
  bf16* Vs = reinterpret_cast<bf16*>(smem + L::kV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* Sw = reinterpret_cast<float*>(smem + L::kS) + warp * 16 * L::LDS;
  bf16* Pw = reinterpret_cast<bf16*>(smem + L::kP) + warp * 16 * L::LDP;
  float* Ow = reinterpret_cast<float*>(smem + L::kO) + warp * 16 * L::LDO;

  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);  // longest tiles first
  const int h = blockIdx.y, g = h / group;
  const int64_t seq_row0 = static_cast<int64_t>(blockIdx.z) * T;
  const int q0 = qt * kBM;
  q += seq_row0 * ld + static_cast<int64_t>(h) * D;
  k += seq_row0 * ld + static_cast<int64_t>(g) * D;
  v += seq_row0 * ld + static_cast<int64_t>(g) * D;

  // The warp's Q fragments, staged through the K buffer.
  load_tile<D>(Ks, q, ld, q0, T);
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qa[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qa[kk], Ks + warp * 16 * L::LDK + kk * 16, L::LDK);
  for (int i = lane; i < 16 * D; i += 32) Ow[(i / D) * L::LDO + i % D] = 0.0f;

  // A lane pair per row: lane 2r and 2r + 1 own row r's even and odd columns.
  const int r = lane / 2, odd = lane % 2;
  const int qpos = q0 + warp * 16 + r;
  const int lo = window > 0 ? qpos - window + 1 : 0;  // first visible key (may be < 0)
  float m = -INFINITY, l = 0.0f;
  const int kt_lo = window > 0 ? (q0 - window + 1 > 0 ? q0 - window + 1 : 0) / kBN : 0;
  __syncthreads();  // every warp holds its Q before K overwrites the staging

  for (int kt = kt_lo; kt <= qt; ++kt) {
    const int k0 = kt * kBN;
    load_tile<D>(Ks, k, ld, k0, T);
    load_tile<D>(Vs, v, ld, k0, T);
    __syncthreads();

    // S [16, 64] = Q·Kᵀ: B(k, n) = K[n][k], i.e. K's rows read column-major.
#pragma unroll
    for (int n = 0; n < kBN / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kb;
        wmma::load_matrix_sync(kb, Ks + n * 16 * L::LDK + kk * 16, L::LDK);
        wmma::mma_sync(acc, qa[kk], kb, acc);
      }
      wmma::store_matrix_sync(Sw + n * 16, acc, L::LDS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax of row r over this tile's visible keys.
    const float* srow = Sw + r * L::LDS;
    float t[kBN / 2];
    float tmax = -INFINITY;
#pragma unroll
    for (int c = 0; c < kBN / 2; ++c) {
      const int j = k0 + 2 * c + odd;
      t[c] = (j <= qpos && j >= lo) ? srow[2 * c + odd] * scale_log2 : -INFINITY;
      tmax = fmaxf(tmax, t[c]);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    const float m_new = fmaxf(m, tmax);
    const float corr = m_new == -INFINITY ? 1.0f : exp2f(m - m_new);  // exp2(−inf) = 0 on the first visible tile
    float sum = 0.0f;
    bf16* prow = Pw + r * L::LDP;
#pragma unroll
    for (int c = 0; c < kBN / 2; ++c) {
      const float p = t[c] == -INFINITY ? 0.0f : exp2f(t[c] - m_new);
      sum += p;
      prow[2 * c + odd] = __float2bfloat16_rn(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * corr + sum;
    m = m_new;
    if (corr != 1.0f) {
      float* orow = Ow + r * L::LDO;
#pragma unroll
      for (int c = 0; c < D / 2; ++c) orow[2 * c + odd] *= corr;
    }
    __syncwarp();

    // O [16, D] += P [16, 64]·V [64, D].
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pa[kBN / 16];
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) wmma::load_matrix_sync(pa[kk], Pw + kk * 16, L::LDP);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Ow + n * 16, L::LDO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> vb;
        wmma::load_matrix_sync(vb, Vs + kk * 16 * L::LDK + n * 16, L::LDK);
        wmma::mma_sync(acc, pa[kk], vb, acc);
      }
      wmma::store_matrix_sync(Ow + n * 16, acc, L::LDO, wmma::mem_row_major);
    }
    __syncthreads();  // K and V are read by every warp before the next tile replaces them
  }

  if (qpos < T) {
    const float inv = 1.0f / l;
    const float* orow = Ow + r * L::LDO;
    float* dst = out + (seq_row0 + qpos) * ld_out + static_cast<int64_t>(h) * D;
#pragma unroll
    for (int c = 0; c < D / 2; ++c) dst[2 * c + odd] = orow[2 * c + odd] * inv;
  }
}

}  // namespace qsweep::cuda::detail::flash
