// blas_kernels.h — make OpenBLAS run the kernels this CPU can run. A DYNAMIC_ARCH OpenBLAS picks
// its kernels from the CPU model it knows; on a CPU newer than the library (Debian's 0.3.21 on a
// Xeon of family 6 model 207) it falls back to generic SSE3 "Prescott" kernels, 5–7× slower at
// sgemm, and says nothing. At start-up, before MPI and before any BLAS call, qsweep compares the
// kernel family OpenBLAS chose (openblas_get_corename) with what cpuid and the OS offer (AVX, AVX2
// + FMA, AVX-512 F/BW/DQ/VL, AVX512_BF16); when the library runs older kernels it sets
// OPENBLAS_CORETYPE to the right family and re-executes itself once (OpenBLAS reads the variable
// when it is loaded, so only a new process can switch). The re-executed process reports what was
// replaced. A user's own OPENBLAS_CORETYPE always wins (with a warning if it is older than the
// CPU); QSWEEP_BLAS_KEEP=1 keeps the library's choice.
#pragma once
#include <string>

namespace qsweep {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512bf16 = false;
  bool amd = false;  // AuthenticAMD: OpenBLAS names its AVX2 family "Zen" there, "Haswell" on Intel
};

// What this CPU and OS support (cpuid + xgetbv).
CpuFeatures cpu_features();
// 0 SSE-class, 1 AVX, 2 AVX2+FMA, 3 AVX-512 (F, BW, DQ, VL): the newest kernels the CPU runs.
int cpu_simd_level(const CpuFeatures& f);
// The level of an OpenBLAS kernel family by its name (case-insensitive), -1 if unknown.
int blas_core_level(const std::string& corename);
// The OpenBLAS family to use on a CPU with `f` when the library chose `current`: "" to keep it.
std::string choose_blas_core(const std::string& current, const CpuFeatures& f);
// A short name of the CPU's best instruction set ("AVX-512", "AVX2", ...).
std::string simd_level_name(int level);

// Called first in main(): may re-execute the process (and then does not return).
void ensure_fast_blas_kernels(char** argv);
// The kernel family OpenBLAS runs now, and the note about a replacement or a user's older
// choice ("" when there is nothing to say).
std::string blas_corename();
std::string blas_kernel_note();

}  // namespace qsweep
