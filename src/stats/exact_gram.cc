// exact_gram.cc — tile dgemm, fixed-point accumulation, exact allreduce.
#include "stats/exact_gram.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/device.h"
#include "core/error.h"
#include "dist/device_comm.h"
#include "stats/block_buffers.h"

#ifdef QSWEEP_WITH_CUDA
#include <exception>

#include "qsweep/cuda/exact_gram.h"
#endif

namespace qsweep {

double fixed_to_double(unsigned __int128 t) {
  const bool neg = static_cast<__int128>(t) < 0;
  const unsigned __int128 mag = neg ? static_cast<unsigned __int128>(-t) : t;
  // One rounding: the 128-bit magnitude to the nearest double, then an exact scaling by 2^-64.
  // The magnitude's leading 64 bits, with every bit shifted out folded into the lowest one (a
  // sticky bit, 11 places below the double's last: it only breaks ties, as the discarded bits
  // would), go through the hardware's correctly rounded uint64 → double; the power of two is
  // exact (results lie within 2^±64). The same double as GCC's __floatuntidf (what this called
  // before, a library routine per entry: test_tree_sum.cc compares the two), so results keep
  // their bits.
  const uint64_t hi = static_cast<uint64_t>(mag >> 64);
  double d;
  if (hi == 0) {
    d = static_cast<double>(static_cast<uint64_t>(mag)) * 0x1p-64;
  } else {
    const int shift = 64 - __builtin_clzll(hi);  // bits below the leading 64
    const unsigned __int128 dropped = mag & ((static_cast<unsigned __int128>(1) << shift) - 1);
    const uint64_t top = static_cast<uint64_t>(mag >> shift) | (dropped != 0 ? 1u : 0u);
    const uint64_t scale_bits = static_cast<uint64_t>(1023 + shift - 64) << 52;  // 2^(shift − 64), normal
    double scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    d = static_cast<double>(top) * scale;
  }
  return neg ? -d : d;
}

namespace {
constexpr int kTile = 64;
// Packed upper triangle by column tiles: tile t holds columns [64t, 64t + jn) for rows
// [0, 64t + jn) (the tile's diagonal block whole), row-major; returns the offset of tile t.
size_t tile_offset(int t, int C) {
  size_t off = 0;
  for (int u = 0; u < t; ++u) {
    const int j0 = u * kTile, jn = std::min(kTile, C - j0);
    off += static_cast<size_t>(j0 + jn) * jn;
  }
  return off;
}
}  // namespace

#ifdef QSWEEP_WITH_CUDA
struct ExactGram::Device {
  cuda::GramAccumulator acc;
};
#else
struct ExactGram::Device {};
#endif

ExactGram::ExactGram(int channels, BlockBuffers* buffers)
    : c_(channels), acc_(tile_offset((channels + kTile - 1) / kTile, channels), 0), buffers_(buffers) {}
ExactGram::~ExactGram() = default;
ExactGram::ExactGram(ExactGram&&) noexcept = default;
ExactGram& ExactGram::operator=(ExactGram&&) noexcept = default;

void ExactGram::add_device(const float* x_device, int64_t rows, int ordinal) {
#ifdef QSWEEP_WITH_CUDA
  try {
    if (!device_) device_.reset(new Device{cuda::GramAccumulator(ordinal, c_, acc_.size())});
    device_->acc.add(x_device, rows);
  } catch (const std::exception& e) {
    QS_THROW("cuda Σxxᵀ (" << c_ << " channels): " << e.what());
  }
#else
  (void)x_device, (void)rows, (void)ordinal;
  QS_ASSERT(false, "ExactGram::add_device in a build without CUDA");
#endif
}

void ExactGram::drain_device() {
#ifdef QSWEEP_WITH_CUDA
  if (!device_) return;
  try {
    status_ = std::max(status_, device_->acc.status());
    device_->acc.drain(acc_.data(), acc_zero_);
    acc_zero_ = false;
  } catch (const std::exception& e) {
    QS_THROW("cuda Σxxᵀ (" << c_ << " channels): " << e.what());
  }
  device_.reset();
#endif
}

void ExactGram::add(const float* x, int64_t rows) {
  host_added_ = true;
  acc_zero_ = false;
  const int C = c_;
  std::vector<double> xd(x, x + rows * C);
  const int tiles = (C + kTile - 1) / kTile;
  int status = 0;
  const double kMax = std::ldexp(1.0, 62);
#pragma omp parallel reduction(max : status)
  {
    std::vector<double> tile(static_cast<size_t>(C) * kTile);
#pragma omp for schedule(dynamic, 1)
    for (int t = tiles - 1; t >= 0; --t) {  // largest tiles first
      const int j0 = t * kTile, jn = std::min(kTile, C - j0), m = j0 + jn;
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, jn, static_cast<int>(rows), 1.0, xd.data(), C,
                  xd.data() + j0, C, 0.0, tile.data(), jn);
      unsigned __int128* base = acc_.data() + tile_offset(t, C);
      for (int i = 0; i < m; ++i) {
        unsigned __int128* a = base + static_cast<size_t>(i) * jn;
        const double* g = tile.data() + static_cast<size_t>(i) * jn;
        for (int j = 0; j < jn; ++j) {
          const double v = g[j];
          if (!(std::fabs(v) < kMax)) {
            status = std::max(status, std::isfinite(v) ? 2 : 1);
            continue;
          }
          a[j] += fixed_from_double(v);
        }
      }
    }
  }
  status_ = std::max(status_, status);
}

void ExactGram::allreduce(const Comm& comm) {
#ifdef QSWEEP_WITH_CUDA
  const ComputeDevice& dev = current_device();  // the same kind on every rank (select_device)
  if (dev.kind == DeviceKind::Cuda && comm.size() > 1) {
    // Every rank takes the same path: NCCL only when no rank holds host sums and no GPU is shared.
    const bool host_sums = comm.allreduce_max(host_added_ ? 1.0 : 0.0) > 0;
    if (!host_sums && nccl_usable(comm, dev.ordinal)) {
      std::string error;
      try {  // a rank that had no chunks takes part with zeros
        if (!device_) device_.reset(new Device{cuda::GramAccumulator(dev.ordinal, c_, acc_.size())});
      } catch (const std::exception& e) {
        error = std::string("cuda Σxxᵀ: ") + e.what();
      }
      comm.agree_or_throw(error);
      nccl_allreduce_i128(comm, dev.ordinal, device_->acc.device_data(), acc_.size());
      drain_device();  // acc_ held zeros: it becomes the total
      return;
    }
  }
#endif
  drain_device();
  comm.allreduce_sum_i128(acc_.data(), acc_.size());
}

int ExactGram::agree_status(const Comm& comm) {
  std::string error;
#ifdef QSWEEP_WITH_CUDA
  try {  // the device's status, the accumulator left there for allreduce
    if (device_) status_ = std::max(status_, device_->acc.status());
  } catch (const std::exception& e) {
    error = std::string("cuda Σxxᵀ: ") + e.what();
  }
#endif
  comm.agree_or_throw(error);  // a device failure on one rank stops every rank here
  return static_cast<int>(comm.allreduce_max(static_cast<double>(status_)));
}

std::vector<double> ExactGram::to_double(int status) const {
  QS_ASSERT(!device_, "ExactGram::to_double before allreduce drained the device accumulator");
  const size_t C = static_cast<size_t>(c_);
  // Every entry is written below (tile t: rows [0, its last column], both triangles), so a reused
  // array's old contents never show.
  std::vector<double> out = buffers_ ? buffers_->doubles(C * C) : std::vector<double>(C * C);
  const int tiles = (c_ + kTile - 1) / kTile;
  // Row by row within a tile: the packed rows are read in order and both mirrored writes stay on
  // the tile's 64 columns and 64 rows. Tiles own disjoint entries (upper: their columns, lower:
  // their rows), so they convert in parallel. An 8192-channel Gram (a 1B model's down_proj) took
  // 0.79 s on a 2-core VM column by column with GCC's 128-bit conversion, 0.40 s now (0.48 s on
  // one thread), most of it the first touch of the 512 MB result; the 1b preset's GPTQ cell
  // spent 3.4 s per block in this whole reduction on an H200 node before (quantize's time line).
#pragma omp parallel for schedule(dynamic, 1)
  for (int t = tiles - 1; t >= 0; --t) {
    const int j0 = t * kTile, jn = std::min(kTile, c_ - j0);
    const unsigned __int128* base = acc_.data() + tile_offset(t, c_);
    for (int i = 0; i < j0 + jn; ++i) {
      const unsigned __int128* row = base + static_cast<size_t>(i) * jn;
      for (int j = std::max(i, j0); j < j0 + jn; ++j) {
        const double v = fixed_to_double(row[j - j0]);
        out[static_cast<size_t>(i) * C + j] = v;
        out[static_cast<size_t>(j) * C + i] = v;
      }
    }
  }
  if (status == 1)
    for (int c = 0; c < c_; ++c) out[static_cast<size_t>(c) * c_ + c] = std::nan("");
  return out;
}

}  // namespace qsweep
