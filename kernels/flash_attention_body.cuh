// flash_attention_body.cuh — the fused attention kernels' body (flash_attention.cu), written
// against CUDA's own names only (thread and block indices, __syncthreads/__syncwarp,
// __shfl_xor_sync, __ldg, WMMA fragments, bf16/tf32 rounding): nvcc compiles it into the kernels,
// and tests/flash_emulator.h runs the same source on the host with stand-ins for those names (a
// thread per CUDA thread, barriers, WMMA fragments as whole matrices that check alignment and
// ldm), so its tiling, masking and online softmax are tested on machines without a GPU.
//
// One thread block of 4 warps per (64-query tile, head, sequence), the longest tiles launched
// first. Each warp owns 16 query rows: its Q fragments stay in registers; per 64-key tile the
// block stages K and V in shared memory, each warp computes S = Q·Kᵀ (fp32 accumulators) into its
// own shared strip, runs the online softmax there (a lane pair per row: running max m and sum l
// in registers, the exponentials in the log2 domain, the output strip rescaled by
// exp2(m_old − m_new)), and adds P·V to its fp32 output strip. The output strip lives in shared
// memory because WMMA's accumulator layout is opaque; the last step divides by l and writes fp32
// rows. Tiles wholly after the tile's queries (and wholly before a sliding window) are never
// loaded. Two arithmetics (the Arith policies below):
//   Bf16Arith    --compute-dtype bf16: Q, K, V in bf16 (rounded once, as the GEMM path's), P's
//                exponentials rounded to bf16, WMMA 16×16×16 on bf16.
//   Tf32x3Arith  --compute-dtype tf32x3: fp32 Q, K, V and P, each operand split into two TF32
//                parts (big = tf32(x), small = tf32(x − big)) and three TF32 products per pair
//                (small·big + big·small + big·big), WMMA 16×16×8: fp32-class products, as
//                tf32x3.cuh's GEMMs.
#pragma once

#include <cmath>
#include <cstdint>

namespace qsweep::cuda::detail::flash {

constexpr int kBM = 64, kBN = 64, kWarps = 4;

// Where the block's arrays sit in its dynamic shared memory (bytes), for head dimension D, K/V
// element E and probability element P (P == float: in place of the scores).
template <int D, class E, class P>
struct Layout {
  static constexpr bool kPInPlace = sizeof(P) == sizeof(float);
  static constexpr int LDK = D + 16 / static_cast<int>(sizeof(E));     // K / V / Q-staging rows, 16 bytes of pad
  static constexpr int LDS = kBN + 4;                                  // fp32 score rows
  static constexpr int LDP = kPInPlace ? LDS : kBN + 16 / static_cast<int>(sizeof(P));  // probability rows
  static constexpr int LDO = D + 4;                                    // fp32 output rows
  static constexpr int kK = 0;
  static constexpr int kV = kK + kBN * LDK * static_cast<int>(sizeof(E));
  static constexpr int kS = kV + kBN * LDK * static_cast<int>(sizeof(E));
  static constexpr int kP = kPInPlace ? kS : kS + kWarps * 16 * LDS * 4;
  static constexpr int kO = kS + kWarps * 16 * LDS * 4 + (kPInPlace ? 0 : kWarps * 16 * LDP * static_cast<int>(sizeof(P)));
  static constexpr int kBytes = kO + kWarps * 16 * LDO * 4;
  static_assert(kV % 32 == 0 && kS % 32 == 0 && kP % 32 == 0 && kO % 32 == 0, "WMMA needs 32-byte alignment");
  static_assert((LDK * sizeof(E)) % 16 == 0 && (LDP * sizeof(P)) % 16 == 0, "16-byte rows");
};

template <int D>
struct Bf16Arith {
  static constexpr int kD = D;
  using E = __nv_bfloat16;
  using P = __nv_bfloat16;
  using Acc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
  using A = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, E, nvcuda::wmma::row_major>;
  struct QFrags {
    A f[D / 16];
  };
  struct PFrags {
    A f[kBN / 16];
  };
  __device__ static P to_p(float x) { return __float2bfloat16_rn(x); }
  // The warp's 16 query rows (p: row 0, rows of stride ld).
  __device__ static void load_q(QFrags& q, const E* p, int ld) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) nvcuda::wmma::load_matrix_sync(q.f[kk], p + kk * 16, ld);
  }
  // acc += Q·Kᵀ for 16 keys (k: the first key's row; B(k, n) = K[n][k]: K's rows read column-major).
  __device__ static void scores(Acc& acc, const QFrags& q, const E* k, int ld) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, E, nvcuda::wmma::col_major> kb;
      nvcuda::wmma::load_matrix_sync(kb, k + kk * 16, ld);
      nvcuda::wmma::mma_sync(acc, q.f[kk], kb, acc);
    }
  }
  __device__ static void load_p(PFrags& pf, const P* p, int ld) {
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) nvcuda::wmma::load_matrix_sync(pf.f[kk], p + kk * 16, ld);
  }
  // acc += P [16, 64]·V [64, 16 columns] (v: key 0's row at the column block).
  __device__ static void pv(Acc& acc, const PFrags& pf, const E* v, int ld) {
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, E, nvcuda::wmma::row_major> vb;
      nvcuda::wmma::load_matrix_sync(vb, v + kk * 16 * ld, ld);
      nvcuda::wmma::mma_sync(acc, pf.f[kk], vb, acc);
    }
  }
};

template <int D>
struct Tf32x3Arith {
  static constexpr int kD = D;
  using E = float;
  using P = float;
  using Acc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;
  using A = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                   nvcuda::wmma::row_major>;
  template <class Layout>
  using B = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8, nvcuda::wmma::precision::tf32, Layout>;
  struct QFrags {
    A big[D / 8], small[D / 8];
  };
  struct PFrags {
    A big[kBN / 8], small[kBN / 8];
  };
  // A loaded fragment (in big) split into its two TF32 parts.
  template <class F>
  __device__ static void split(F& big, F& small) {
#pragma unroll
    for (int i = 0; i < big.num_elements; ++i) {
      const float x = big.x[i];
      big.x[i] = nvcuda::wmma::__float_to_tf32(x);
      small.x[i] = nvcuda::wmma::__float_to_tf32(x - big.x[i]);
    }
  }
  template <class FA, class FB>
  __device__ static void mma3(Acc& acc, const FA& a_big, const FA& a_small, const FB& b_big, const FB& b_small) {
    nvcuda::wmma::mma_sync(acc, a_small, b_big, acc);
    nvcuda::wmma::mma_sync(acc, a_big, b_small, acc);
    nvcuda::wmma::mma_sync(acc, a_big, b_big, acc);
  }
  __device__ static P to_p(float x) { return x; }
  __device__ static void load_q(QFrags& q, const E* p, int ld) {
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) {
      nvcuda::wmma::load_matrix_sync(q.big[kk], p + kk * 8, ld);
      split(q.big[kk], q.small[kk]);
    }
  }
  __device__ static void scores(Acc& acc, const QFrags& q, const E* k, int ld) {
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) {
      B<nvcuda::wmma::col_major> kb, ks;
      nvcuda::wmma::load_matrix_sync(kb, k + kk * 8, ld);
      split(kb, ks);
      mma3(acc, q.big[kk], q.small[kk], kb, ks);
    }
  }
  __device__ static void load_p(PFrags& pf, const P* p, int ld) {
#pragma unroll
    for (int kk = 0; kk < kBN / 8; ++kk) {
      nvcuda::wmma::load_matrix_sync(pf.big[kk], p + kk * 8, ld);
      split(pf.big[kk], pf.small[kk]);
    }
  }
  __device__ static void pv(Acc& acc, const PFrags& pf, const E* v, int ld) {
#pragma unroll
    for (int kk = 0; kk < kBN / 8; ++kk) {
      B<nvcuda::wmma::row_major> vb, vs;
      nvcuda::wmma::load_matrix_sync(vb, v + kk * 8 * ld, ld);
      split(vb, vs);
      mma3(acc, pf.big[kk], pf.small[kk], vb, vs);
    }
  }
};

// Rows [r0, r0 + 64) of one head's D columns (src: the head's column 0 of sequence row 0, rows of
// stride ld) into dst [64, LDK]; rows at or past T are zero. 16-byte vectors.
template <class E, int D, int LDK>
__device__ inline void load_tile(E* dst, const E* src, int64_t ld, int r0, int T) {
  constexpr int kPer = 16 / static_cast<int>(sizeof(E)), kVecs = D / kPer;  // elements per vector, vectors per row
  for (int i = threadIdx.x; i < kBN * kVecs; i += blockDim.x) {
    const int r = i / kVecs, c = (i % kVecs) * kPer;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r0 + r < T) val = __ldg(reinterpret_cast<const uint4*>(src + static_cast<int64_t>(r0 + r) * ld + c));
    *reinterpret_cast<uint4*>(dst + r * LDK + c) = val;
  }
}

// The block (blockIdx.x: the query tile counted from the last, y: the head, z: the sequence) on
// `smem` of Layout's kBytes; q, k, v: sequence row 0 of the tensors (rows of stride ld), out:
// rows of stride ld_out; scale_log2 = log2(e)/sqrt(D).
template <class Arith>
__device__ inline void attention_block(unsigned char* smem, const typename Arith::E* q, const typename Arith::E* k,
                                       const typename Arith::E* v, int64_t ld, float* out, int64_t ld_out, int T,
                                       int group, int window, float scale_log2) {
  using namespace nvcuda;
  constexpr int D = Arith::kD;
  using E = typename Arith::E;
  using P = typename Arith::P;
  using L = Layout<D, E, P>;
  E* Ks = reinterpret_cast<E*>(smem + L::kK);
  E* Vs = reinterpret_cast<E*>(smem + L::kV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* Sw = reinterpret_cast<float*>(smem + L::kS) + warp * 16 * L::LDS;
  P* Pw = reinterpret_cast<P*>(smem + L::kP) + warp * 16 * L::LDP;
  float* Ow = reinterpret_cast<float*>(smem + L::kO) + warp * 16 * L::LDO;

  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);  // longest tiles first
  const int h = blockIdx.y, g = h / group;
  const int64_t seq_row0 = static_cast<int64_t>(blockIdx.z) * T;
  const int q0 = qt * kBM;
  q += seq_row0 * ld + static_cast<int64_t>(h) * D;
  k += seq_row0 * ld + static_cast<int64_t>(g) * D;
  v += seq_row0 * ld + static_cast<int64_t>(g) * D;

  // The warp's Q fragments, staged through the K buffer.
  load_tile<E, D, L::LDK>(Ks, q, ld, q0, T);
  __syncthreads();
  typename Arith::QFrags qf;
  Arith::load_q(qf, Ks + warp * 16 * L::LDK, L::LDK);
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
    load_tile<E, D, L::LDK>(Ks, k, ld, k0, T);
    load_tile<E, D, L::LDK>(Vs, v, ld, k0, T);
    __syncthreads();

    // S [16, 64] = Q·Kᵀ.
#pragma unroll
    for (int n = 0; n < kBN / 16; ++n) {
      typename Arith::Acc acc;
      wmma::fill_fragment(acc, 0.0f);
      Arith::scores(acc, qf, Ks + n * 16 * L::LDK, L::LDK);
      wmma::store_matrix_sync(Sw + n * 16, acc, L::LDS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax of row r over this tile's visible keys (P may overwrite S in place: each lane
    // reads all of its scores before it writes).
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
    P* prow = Pw + r * L::LDP;
#pragma unroll
    for (int c = 0; c < kBN / 2; ++c) {
      const float p = t[c] == -INFINITY ? 0.0f : exp2f(t[c] - m_new);
      sum += p;
      prow[2 * c + odd] = Arith::to_p(p);
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
    typename Arith::PFrags pf;
    Arith::load_p(pf, Pw, L::LDP);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      typename Arith::Acc acc;
      wmma::load_matrix_sync(acc, Ow + n * 16, L::LDO, wmma::mem_row_major);
      Arith::pv(acc, pf, Vs + n * 16, L::LDK);
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
