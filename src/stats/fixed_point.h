// fixed_point.h — the exact Σxxᵀ's fixed-point grid (stats/exact_gram.h): v·2^64 truncated toward
// zero into a 128-bit two's-complement integer, for |v| < 2^62. One definition for the CPU (g++)
// and the GPU (nvcc, kernels/exact_gram.cu), so both add the same integer for the same double.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define QS_HOST_DEVICE __host__ __device__
#else
#define QS_HOST_DEVICE
#endif

namespace qsweep {

QS_HOST_DEVICE inline unsigned __int128 fixed_from_double(double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof(bits));
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

}  // namespace qsweep
