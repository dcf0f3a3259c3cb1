// blas_kernels.cc — cpuid, the decision, the one re-execution.
#include "core/blas_kernels.h"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qsweep {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The test hook documented in blas_kernels.cc only: QSWEEP_TEST_BLAS_CORENAME makes the first
// process believe OpenBLAS chose that family, so the re-execution can be tested on a CPU the
// library knows. The re-executed process reads the real name.
std::string reported_corename() {
  const char* fake = std::getenv("QSWEEP_TEST_BLAS_CORENAME");
  if (fake && *fake && !std::getenv("QSWEEP_BLAS_REEXEC")) return fake;
  const char* n = openblas_get_corename();
  return n ? n : "";
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d)) {  // the vendor string is EBX, EDX, ECX
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    f.amd = std::strcmp(vendor, "AuthenticAMD") == 0;
  }
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
  f.avx = avx && os_avx;
  f.fma = fma && f.avx;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.avx && (b & (1u << 5));
    f.avx512f = os_avx512 && (b & (1u << 16));
    f.avx512dq = f.avx512f && (b & (1u << 17));
    f.avx512bw = f.avx512f && (b & (1u << 30));
    f.avx512vl = f.avx512f && (b & (1u << 31));
  }
  if (f.avx512f && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = a & (1u << 5);
#endif
  return f;
}

int cpu_simd_level(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx2 && f.fma) return 3;
  if (f.avx2 && f.fma) return 2;
  if (f.avx) return 1;
  return 0;
}

std::string simd_level_name(int level) {
  static const char* names[] = {"SSE", "AVX", "AVX2", "AVX-512"};
  return level >= 0 && level <= 3 ? names[level] : "unknown";
}

int blas_core_level(const std::string& corename) {
  const std::string n = lower(corename);
  for (const char* s : {"skylakex", "cooperlake", "sapphirerapids"})
    if (n == s) return 3;
  for (const char* s : {"haswell", "zen"})
    if (n == s) return 2;
  for (const char* s : {"sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"})
    if (n == s) return 1;
  for (const char* s : {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine",
                        "northwood", "banias", "athlon", "opteron", "opteron_sse3", "barcelona", "bobcat", "nano"})
    if (n == s) return 0;
  return -1;
}

std::string choose_blas_core(const std::string& current, const CpuFeatures& f) {
  const int have = blas_core_level(current), can = cpu_simd_level(f);
  if (have < 0 || have >= can) return "";  // unknown family (another architecture) or good enough
  switch (can) {
    case 3: return f.avx512bf16 ? "Cooperlake" : "SkylakeX";
    case 2: return f.amd ? "Zen" : "Haswell";  // the name OpenBLAS itself gives this level here
    case 1: return "Sandybridge";
    default: return "";
  }
}

std::string blas_corename() { return reported_corename(); }

void ensure_fast_blas_kernels(char** argv) {
  if (std::getenv("QSWEEP_BLAS_REEXEC") || std::getenv("OPENBLAS_CORETYPE")) return;
  const char* keep = std::getenv("QSWEEP_BLAS_KEEP");
  if (keep && *keep && std::strcmp(keep, "0") != 0) return;
  const std::string current = reported_corename();
  const std::string pick = choose_blas_core(current, cpu_features());
  if (pick.empty()) return;
  ::setenv("OPENBLAS_CORETYPE", pick.c_str(), 1);
  ::setenv("QSWEEP_BLAS_REEXEC", current.c_str(), 1);  // what was replaced, for the note
  ::execv("/proc/self/exe", argv);
  // Only reached when exec failed: run on with the slow kernels, and say so.
  std::fprintf(stderr, "qsweep: warning: OpenBLAS runs %s kernels on a CPU with %s; re-executing with "
                       "OPENBLAS_CORETYPE=%s failed; set it yourself\n",
               current.c_str(), simd_level_name(cpu_simd_level(cpu_features())).c_str(), pick.c_str());
  ::unsetenv("OPENBLAS_CORETYPE");
  ::unsetenv("QSWEEP_BLAS_REEXEC");
}

std::string blas_kernel_note() {
  const CpuFeatures f = cpu_features();
  const std::string cpu = simd_level_name(cpu_simd_level(f));
  const char* replaced = std::getenv("QSWEEP_BLAS_REEXEC");
  const std::string now = reported_corename();
  if (replaced && *replaced)
    return "OpenBLAS chose generic " + std::string(replaced) + " kernels on this " + cpu +
           " CPU (a CPU model the library does not know); qsweep set OPENBLAS_CORETYPE=" + now +
           " and restarted (set OPENBLAS_CORETYPE yourself to choose, or QSWEEP_BLAS_KEEP=1 to keep the library's choice)";
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  if (user && *user && blas_core_level(now) >= 0 && blas_core_level(now) < cpu_simd_level(f))
    return "OPENBLAS_CORETYPE=" + std::string(user) + " (set by you) runs " + now + " kernels, older than this " +
           cpu + " CPU supports; unset it to let qsweep choose";
  return "";
}

}  // namespace qsweep
