// flash_emulator.h — runs kernels/flash_attention_body.cuh, the fused bf16 attention kernel's
// source, on the host: stand-ins for the CUDA names it uses, then the body itself.
//
// A thread block is 128 std::threads (one per CUDA thread) with a block barrier (__syncthreads)
// and one barrier per warp (__syncwarp; __shfl_xor_sync exchanges through a warp's slots between
// two of them). WMMA fragments are whole 16×16 matrices in float (bf16 values are exact there);
// every WMMA call is warp-collective as on the GPU (barriers before and after, lane 0 stores) and
// checks what the hardware requires and would otherwise fault or misread on: 32-byte aligned
// pointers, ldm a multiple of 16 bytes, and (for shared memory) the access inside the block's
// allocation. Not emulated: the accumulation order inside an mma (fp32 here, row by row) and the
// device's exp2f (the host's). What this does test is the kernel's own arithmetic of indices,
// tiles, masks, barriers and the online softmax — everything but the hardware's rounding.
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

// Checks of a WMMA access of 16 rows of 16 elements of `bytes_per` bytes at p with stride ldm.
inline void check_access(const void* p, unsigned ldm, int bytes_per, const char* what) {
  const auto* c = static_cast<const unsigned char*>(p);
  if (reinterpret_cast<std::uintptr_t>(p) % 32) block->fail(std::string(what) + ": pointer not 32-byte aligned");
  if ((ldm * bytes_per) % 16) block->fail(std::string(what) + ": ldm not a multiple of 16 bytes");
  const unsigned char* last = c + (15 * static_cast<std::size_t>(ldm) + 16) * bytes_per;
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
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  float x[16][16];
};

template <class Use, class T, class Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  namespace e = qsweep::test::emu;
  e::sync_warp();
  e::check_access(p, ldm, sizeof(T), "load_matrix_sync");
  constexpr bool row = std::is_same<Layout, row_major>::value;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.x[i][j] = e::to_float(row ? p[i * ldm + j] : p[j * ldm + i]);
  e::sync_warp();
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l) {
  namespace e = qsweep::test::emu;
  e::sync_warp();
  e::check_access(p, ldm, sizeof(float), "load_matrix_sync (accumulator)");
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.x[i][j] = l == mem_row_major ? p[i * ldm + j] : p[j * ldm + i];
  e::sync_warp();
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  namespace e = qsweep::test::emu;
  e::sync_warp();
  e::check_access(p, ldm, sizeof(float), "store_matrix_sync");
  if (e::lane() == 0)
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) (l == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.x[i][j];
  e::sync_warp();
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float v) {
  for (auto& r : f.x)
    for (float& x : r) x = v;
}
template <class T, class LA, class LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
              const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  fragment<accumulator, 16, 16, 16, float> r;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.x[i][j];
      for (int k = 0; k < 16; ++k) s += a.x[i][k] * b.x[k][j];
      r.x[i][j] = s;
    }
  d = r;
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

// flash_attention_bf16's launch on host arrays (q|k|v rows of ld elements, bf16 values in
// float), the grid run block by block; returns the first violation a WMMA or __ldg call met
// ("" when none) and throws nothing. out [n_seq·T, nh·D].
template <int D>
std::string run_flash_emulated(const std::vector<float>& qkv, std::vector<float>& out, int n_seq, int T, int nh,
                               int nkv, int window) {
  namespace e = emu;
  using L = cuda::detail::flash::Layout<D>;
  const int64_t ld = static_cast<int64_t>(nh + 2 * nkv) * D, ld_out = static_cast<int64_t>(nh) * D;
  std::vector<e::bf16> x16(qkv.size());
  for (std::size_t i = 0; i < qkv.size(); ++i) x16[i] = e::round_bf16(qkv[i]);
  out.assign(static_cast<std::size_t>(n_seq) * T * nh * D, std::nanf(""));
  // Shared memory with a guard band after it: a stray write past the end shows there.
  constexpr std::size_t kGuard = 256;
  std::vector<e::U4> smem_store((L::kBytes + kGuard) / sizeof(e::U4) + 8);
  auto* smem = reinterpret_cast<unsigned char*>(smem_store.data());
  smem += (128 - reinterpret_cast<std::uintptr_t>(smem) % 128) % 128;
  const float scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(D)));
  e::grid_dim = {static_cast<unsigned>((T + 63) / 64), static_cast<unsigned>(nh), static_cast<unsigned>(n_seq)};
  e::block_dim = {128, 1, 1};
  std::string error;
  for (unsigned z = 0; z < e::grid_dim.z && error.empty(); ++z)
    for (unsigned y = 0; y < e::grid_dim.y && error.empty(); ++y)
      for (unsigned x = 0; x < e::grid_dim.x && error.empty(); ++x) {
        e::block_idx = {x, y, z};
        std::memset(smem, 0xA5, L::kBytes + kGuard);  // uninitialised shared memory is garbage
        e::Block blk;
        blk.smem_lo = smem;
        blk.smem_hi = smem + L::kBytes;
        e::block = &blk;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < 128; ++t)
          threads.emplace_back([&, t] {
            e::thread_idx = {t, 0, 0};
            const e::bf16* q = x16.data();
            cuda::detail::flash::attention_block<D>(smem, q, q + static_cast<int64_t>(nh) * D,
                                                    q + static_cast<int64_t>(nh + nkv) * D, ld, out.data(), ld_out, T,
                                                    nh / nkv, window, scale_log2);
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
