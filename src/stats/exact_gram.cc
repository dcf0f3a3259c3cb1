// exact_gram.cc — tile dgemm, fixed-point accumulation, exact allreduce.
#include "stats/exact_gram.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace qsweep {

unsigned __int128 fixed_from_double(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  const int e = static_cast<int>((bits >> 52) & 0x7ff);
  if (e == 0) return 0;  // zero or subnormal: far below the grid
  const uint64_t m = (bits & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52);
  const int shift = e - 1011;  // v·2^64 = m·2^(e-1075+64)
  unsigned __int128 mag;
  if (shift >= 0)
    mag = static_cast<unsigned __int128>(m) << shift;
  else if (shift > -64)
    mag = m >> -shift;
  else
    mag = 0;
  return (bits >> 63) ? static_cast<unsigned __int128>(-mag) : mag;
}

double fixed_to_double(unsigned __int128 t) {
  const bool neg = static_cast<__int128>(t) < 0;
  const unsigned __int128 mag = neg ? static_cast<unsigned __int128>(-t) : t;
  // Exact split into high and low 64-bit halves; hi·2^64 is exact in double up to rounding of hi,
  // so round once: convert the 128-bit magnitude with correct rounding (GCC's __floatuntidf).
  const double d = std::ldexp(static_cast<double>(mag), -64);
  return neg ? -d : d;
}

ExactGram::ExactGram(int channels) : c_(channels), acc_(static_cast<size_t>(channels) * channels, 0) {}

void ExactGram::add(const float* x, int64_t rows) {
  const int C = c_;
  std::vector<double> xd(x, x + rows * C);
  constexpr int kTile = 64;
  const int tiles = (C + kTile - 1) / kTile;
  int status = 0;
  const double kMax = std::ldexp(1.0, 62);
#pragma omp parallel reduction(max : status)
  {
    std::vector<double> tile(static_cast<size_t>(C) * kTile);
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < tiles; ++t) {
      const int j0 = t * kTile, jn = std::min(kTile, C - j0);
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, jn, static_cast<int>(rows), 1.0, xd.data(), C,
                  xd.data() + j0, C, 0.0, tile.data(), jn);
      for (int i = 0; i < C; ++i) {
        unsigned __int128* a = acc_.data() + static_cast<size_t>(i) * C + j0;
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

void ExactGram::allreduce(const Comm& comm) { comm.allreduce_sum_i128(acc_.data(), acc_.size()); }

int ExactGram::agree_status(const Comm& comm) const {
  return static_cast<int>(comm.allreduce_max(static_cast<double>(status_)));
}

std::vector<double> ExactGram::to_double(int status) const {
  std::vector<double> out(acc_.size());
  for (size_t k = 0; k < acc_.size(); ++k) out[k] = fixed_to_double(acc_[k]);
  if (status == 1)
    for (int c = 0; c < c_; ++c) out[static_cast<size_t>(c) * c_ + c] = std::nan("");
  return out;
}

}  // namespace qsweep
