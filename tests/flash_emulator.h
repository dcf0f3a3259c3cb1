// flash_emulator.h — runs kernels/flash_attention_body.cuh, the fused attention kernels' source,
// on the host: stand-ins for the CUDA names it uses, then the body itself.
//
// A thread block is 128 std::threads (one per CUDA thread) with a block barrier (__syncthreads)
// and one barrier per warp (__syncwarp; __shfl_xor_sync exchanges through a warp's slots between
// two of them). WMMA fragments are whole matrices in float (bf16 values are exact there; TF32
// inputs are truncated to their 19 bits in the mma, as the hardware reads them;
// __float_to_tf32 rounds as cvt.rna does); every load and store is warp-collective as on the GPU
// (barriers before and after, lane 0 stores) and checks what the hardware requires and would
// otherwise fault or misread on: 32-byte aligned pointers, ldm a multiple of 16 bytes, the access
// inside the block's shared memory; a 64 KiB guard band after that memory catches the kernel's own
// stray stores. Not emulated: the accumulation order inside an mma (fp32 here, in k order) and
// the device's exp2f (the host's). What this tests is the kernels' own arithmetic of indices,
// tiles, masks, barriers, operand splits and the online softmax — everything but the hardware's
// rounding.
#pragma once

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace qsweep::test::emu {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local Dim3 thread_idx;
inline Dim3 block_idx, grid_dim, block_dim;

// A reusable barrier of n threads.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lk(m_);
    const unsigned gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return gen != gen_; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_, count_ = 0;
  unsigned gen_ = 0;
};

// The running block's barriers, shared memory bounds and the first violation seen.
struct Block {
  Barrier block{128};
  Barrier warps[4] = {Barrier(32), Barrier(32), Barrier(32), Barrier(32)};
  float slots[4][32] = {};
  const unsigned char* smem_lo = nullptr;
  const unsigned char* smem_hi = nullptr;
  std::mutex err_m;
  std::string error;
  void fail(const std::string& e) {
    std::lock_guard<std::mutex> g(err_m);
    if (error.empty()) error = e;
  }
};
inline Block* block = nullptr;

inline int lane() { return static_cast<int>(thread_idx.x % 32); }
inline void sync_block() { block->block.wait(); }
inline void sync_warp() { block->warps[thread_idx.x / 32].wait(); }
inline float shfl_xor(unsigned, float v, int mask) {
  float* s = block->slots[thread_idx.x / 32];
  s[lane()] = v;
  sync_warp();
  const float r = s[lane() ^ mask];
  sync_warp();
  return r;
}

struct bf16 {
  std::uint16_t bits;
};
inline float to_float(bf16 b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline float to_float(float f) { return f; }
inline bf16 round_bf16(float f) {  // round to nearest even (finite values)
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<std::uint16_t>(u >> 16)};
}
struct alignas(16) U4 {
  std::uint32_t x, y, z, w;
};
inline U4 make_u4(std::uint32_t x, std::uint32_t y, std::uint32_t z, std::uint32_t w) { return U4{x, y, z, w}; }
inline U4 ldg(const U4* p) {
  if (reinterpret_cast<std::uintptr_t>(p) % 16) block->fail("__ldg of a uint4 not 16-byte aligned");
  return *p;
}

// Checks of a WMMA access of rows × cols elements of `bytes_per` bytes at p with stride ldm.
inline void check_access(const void* p, unsigned ldm, std::size_t bytes_per, int rows, int cols, bool row,
                         const char* what) {
  const auto* c = static_cast<const unsigned char*>(p);
  if (reinterpret_cast<std::uintptr_t>(p) % 32) block->fail(std::string(what) + ": pointer not 32-byte aligned");
  if ((ldm * bytes_per) % 16) block->fail(std::string(what) + ": ldm not a multiple of 16 bytes");
  const int lines = row ? rows : cols, len = row ? cols : rows;
  const unsigned char* last = c + ((lines - 1) * static_cast<std::size_t>(ldm) + len) * bytes_per;
  if (c >= block->smem_lo && c < block->smem_hi && last > block->smem_hi)
    block->fail(std::string(what) + ": past the end of shared memory");
}

}  // namespace qsweep::test::emu

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}
enum layout_t { mem_row_major, mem_col_major };

// A whole matrix per lane: matrix_a M×K, matrix_b K×N, accumulator M×N, row-major in x.
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
  static constexpr int num_elements = rows * cols;
  float x[num_elements];
};

// cvt.rna.tf32.f32: 10 stored significand bits, to nearest, ties away from zero (finite values).
inline float __float_to_tf32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace nvcuda::wmma

namespace qsweep::test::emu {

// What an mma reads of an input element: bf16 values are exact; TF32 inputs keep their top 19 bits.
inline float mma_input(float x, nvcuda::wmma::precision::tf32) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u &= 0xffffe000u;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <class T>
float mma_input(float x, T) {
  return x;
}

// A warp-collective copy between a fragment and memory (rows × cols elements of type S at p, stride
// ldm, row- or column-major), with the hardware's requirements checked.
template <class F, class S>
void copy_fragment(F& f, S* p, unsigned ldm, bool row, bool store, const char* what) {
  sync_warp();
  check_access(p, ldm, sizeof(S), F::rows, F::cols, row, what);
  if (!store || lane() == 0)
    for (int i = 0; i < F::rows; ++i)
      for (int j = 0; j < F::cols; ++j) {
        S* e = row ? &p[i * ldm + j] : &p[j * ldm + i];
        if constexpr (std::is_same<S, float>::value) {
          if (store) *e = f.x[i * F::cols + j];
        }
        if (!store) f.x[i * F::cols + j] = to_float(*e);
      }
  sync_warp();
}

}  // namespace qsweep::test::emu

namespace nvcuda::wmma {

template <class Use, int M, int N, int K, class T, class Layout, class S>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const S* p, unsigned ldm) {
  qsweep::test::emu::copy_fragment(f, p, ldm, std::is_same<Layout, row_major>::value, false, "load_matrix_sync");
}
template <int K>
void load_matrix_sync(fragment<accumulator, 16, 16, K, float>& f, const float* p, unsigned ldm, layout_t l) {
  qsweep::test::emu::copy_fragment(f, p, ldm, l == mem_row_major, false, "load_matrix_sync (accumulator)");
}
template <int K>
void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, K, float>& f, unsigned ldm, layout_t l) {
  auto& g = const_cast<fragment<accumulator, 16, 16, K, float>&>(f);  // read only when storing
  qsweep::test::emu::copy_fragment(g, p, ldm, l == mem_row_major, true, "store_matrix_sync");
}
template <int K>
void fill_fragment(fragment<accumulator, 16, 16, K, float>& f, float v) {
  for (float& x : f.x) x = v;
}
template <int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, 16, 16, K, float>& d, const fragment<matrix_a, 16, 16, K, T, LA>& a,
              const fragment<matrix_b, 16, 16, K, T, LB>& b, const fragment<accumulator, 16, 16, K, float>& c) {
  float r[256];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.x[i * 16 + j];
      for (int k = 0; k < K; ++k)
        s += qsweep::test::emu::mma_input(a.x[i * K + k], T{}) * qsweep::test::emu::mma_input(b.x[k * 16 + j], T{});
      r[i * 16 + j] = s;
    }
  std::memcpy(d.x, r, sizeof r);
}

}  // namespace nvcuda::wmma

// The CUDA names the body uses, mapped onto the stand-ins above.
#define __device__
#define threadIdx qsweep::test::emu::thread_idx
#define blockIdx qsweep::test::emu::block_idx
#define gridDim qsweep::test::emu::grid_dim
#define blockDim qsweep::test::emu::block_dim
#define __syncthreads() qsweep::test::emu::sync_block()
#define __syncwarp() qsweep::test::emu::sync_warp()
#define __shfl_xor_sync(mask, v, lanemask) qsweep::test::emu::shfl_xor(mask, v, lanemask)
#define __ldg(p) qsweep::test::emu::ldg(p)
#define __nv_bfloat16 qsweep::test::emu::bf16
#define __float2bfloat16_rn(f) qsweep::test::emu::round_bf16(f)
#define uint4 qsweep::test::emu::U4
#define make_uint4 qsweep::test::emu::make_u4

#include "../kernels/flash_attention_body.cuh"

#undef __device__
#undef threadIdx
#undef blockIdx
#undef gridDim
#undef blockDim
#undef __syncthreads
#undef __syncwarp
#undef __shfl_xor_sync
#undef __ldg
#undef __nv_bfloat16
#undef __float2bfloat16_rn
#undef uint4
#undef make_uint4

namespace qsweep::test {

// A fused attention kernel's launch on host arrays (q|k|v rows of ld elements, converted to
// Arith's element type), the grid run block by block; returns the first violation a WMMA or __ldg
// call met ("" when none) and throws nothing. out [n_seq·T, nh·D].
template <class Arith>
std::string run_flash_emulated(const std::vector<float>& qkv, std::vector<float>& out, int n_seq, int T, int nh,
                               int nkv, int window) {
  namespace e = emu;
  constexpr int D = Arith::kD;
  using E = typename Arith::E;
  using L = cuda::detail::flash::Layout<D, E, typename Arith::P>;
  const int64_t ld = static_cast<int64_t>(nh + 2 * nkv) * D, ld_out = static_cast<int64_t>(nh) * D;
  std::vector<E> x(qkv.size());
  for (std::size_t i = 0; i < qkv.size(); ++i) {
    if constexpr (std::is_same<E, float>::value)
      x[i] = qkv[i];
    else
      x[i] = e::round_bf16(qkv[i]);
  }
  out.assign(static_cast<std::size_t>(n_seq) * T * nh * D, std::nanf(""));
  // Shared memory with a guard band after it: a stray write past the end shows there.
  constexpr std::size_t kGuard = 64 << 10;
  std::vector<e::U4> smem_store((L::kBytes + kGuard) / sizeof(e::U4) + 8);
  auto* smem = reinterpret_cast<unsigned char*>(smem_store.data());
  smem += (128 - reinterpret_cast<std::uintptr_t>(smem) % 128) % 128;
  const float scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(D)));
  e::grid_dim = {static_cast<unsigned>((T + 63) / 64), static_cast<unsigned>(nh), static_cast<unsigned>(n_seq)};
  e::block_dim = {128, 1, 1};
  std::string error;
  for (unsigned z = 0; z < e::grid_dim.z && error.empty(); ++z)
    for (unsigned y = 0; y < e::grid_dim.y && error.empty(); ++y)
      for (unsigned bx = 0; bx < e::grid_dim.x && error.empty(); ++bx) {
        e::block_idx = {bx, y, z};
        std::memset(smem, 0xA5, L::kBytes + kGuard);  // uninitialised shared memory is garbage
        e::Block blk;
        blk.smem_lo = smem;
        blk.smem_hi = smem + L::kBytes;
        e::block = &blk;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < 128; ++t)
          threads.emplace_back([&, t] {
            e::thread_idx = {t, 0, 0};
            const E* q = x.data();
            cuda::detail::flash::attention_block<Arith>(smem, q, q + static_cast<int64_t>(nh) * D,
                                                        q + static_cast<int64_t>(nh + nkv) * D, ld, out.data(), ld_out,
                                                        T, nh / nkv, window, scale_log2);
          });
        for (auto& th : threads) th.join();
        for (std::size_t i = 0; i < kGuard; ++i)
          if (smem[L::kBytes + i] != 0xA5) blk.fail("a write past the end of shared memory");
        error = blk.error;
        e::block = nullptr;
      }
  return error;
}

}  // namespace qsweep::test
