// test_cuda_kernels.cc — checks qsweep's CUDA kernels against straightforward CPU references.
//
// Built only with QSWEEP_WITH_CUDA=ON. Kernel tests skip (printing the device summary) on
// machines without a usable GPU; the device-query tests always run and must never throw.
#include "qsweep/cuda/backend.h"
#include "qsweep/cuda/host_copy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace qc = qsweep::cuda;

constexpr std::uint32_t kSeed = 20240611u;

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::vector<float> random_normal(std::size_t n, std::mt19937& rng, float mean = 0.0f,
                                 float stddev = 1.0f) {
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<std::uint16_t> all_16bit_patterns() {
  std::vector<std::uint16_t> v(1u << 16);
  for (std::uint32_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint16_t>(i);
  return v;
}

// IEEE binary16 -> binary32, decoded field by field.
float f16_reference(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1u;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) {  // inf / NaN: keep the payload in the top mantissa bits
    return float_of((sign << 31) | 0x7f800000u | (mantissa << 13));
  }
  const double magnitude =
      exponent == 0 ? std::ldexp(static_cast<double>(mantissa), -24)  // subnormal / zero
                    : std::ldexp(1.0 + mantissa / 1024.0, static_cast<int>(exponent) - 15);
  return static_cast<float>(sign ? -magnitude : magnitude);
}

// Runs GPU tests only where a device exists; otherwise skips, saying why.
class CudaKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (qc::device_count() == 0) GTEST_SKIP() << qc::device_summary();
  }
};

// ---------------------------------------------------------------------------------------------
// Always run.

TEST(CudaBackend, DeviceQueryNeverThrows) {
  int count = -1;
  EXPECT_NO_THROW(count = qc::device_count());
  EXPECT_GE(count, 0);

  std::string summary;
  EXPECT_NO_THROW(summary = qc::device_summary());
  EXPECT_FALSE(summary.empty());
  std::printf("[   INFO   ] %s\n", summary.c_str());
  if (count == 0) {
    EXPECT_EQ(summary.rfind("0 CUDA devices", 0), 0u) << summary;
  }

  int nccl = 0;
  EXPECT_NO_THROW(nccl = qc::nccl_version());
  EXPECT_GT(nccl, 0);
  std::printf("[   INFO   ] NCCL version code %d\n", nccl);
}

TEST(CudaBackend, NegativeShapesAreRejected) {
  float dummy[1] = {0.0f};
  EXPECT_THROW(qc::rmsnorm(dummy, dummy, dummy, -1, 4, 1e-5f), std::invalid_argument);
  EXPECT_THROW(qc::rmsnorm(dummy, dummy, dummy, 1, -4, 1e-5f), std::invalid_argument);
  EXPECT_THROW(qc::sgemm_xwt(dummy, dummy, dummy, 1, -1, 1), std::invalid_argument);
}

TEST(CudaBackend, EmptyInputsAreNoOps) {
  // Size-0 calls touch no device, so they succeed with or without a GPU.
  EXPECT_NO_THROW(qc::bf16_to_f32(nullptr, nullptr, 0));
  EXPECT_NO_THROW(qc::f16_to_f32(nullptr, nullptr, 0));
  EXPECT_NO_THROW(qc::silu_mul(nullptr, nullptr, nullptr, 0));
  EXPECT_NO_THROW(qc::rmsnorm(nullptr, nullptr, nullptr, 0, 16, 1e-5f));
  EXPECT_NO_THROW(qc::sgemm_xwt(nullptr, nullptr, nullptr, 0, 3, 2));
  std::vector<float> y(6, 1.0f);
  qc::sgemm_xwt(nullptr, nullptr, y.data(), 2, 3, 0);  // k == 0: y is all zeros
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(CudaBackend, WithoutDeviceKernelsThrowRuntimeError) {
  if (qc::device_count() != 0) GTEST_SKIP() << "a CUDA device is present";
  const std::vector<std::uint16_t> src(8, 0x3f80u);
  std::vector<float> dst(src.size());
  try {
    qc::bf16_to_f32(src.data(), dst.data(), src.size());
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(".cu"), std::string::npos) << what;  // carries the source file:line
    EXPECT_NE(what.find("failed"), std::string::npos) << what;
    std::printf("[   INFO   ] %s\n", what.c_str());
  }
}

// ---------------------------------------------------------------------------------------------
// Need a GPU. Conversions are checked exhaustively over all 65536 bit patterns.

TEST_F(CudaKernelTest, Bf16ToF32IsExact) {
  const std::vector<std::uint16_t> src = all_16bit_patterns();
  std::vector<float> dst(src.size());
  qc::bf16_to_f32(src.data(), dst.data(), src.size());
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::uint32_t expected = static_cast<std::uint32_t>(src[i]) << 16;
    ASSERT_EQ(bits_of(dst[i]), expected) << "bf16 pattern 0x" << std::hex << src[i];
  }
}

TEST_F(CudaKernelTest, F16ToF32IsExact) {
  const std::vector<std::uint16_t> src = all_16bit_patterns();
  std::vector<float> dst(src.size());
  qc::f16_to_f32(src.data(), dst.data(), src.size());
  for (std::size_t i = 0; i < src.size(); ++i) {
    const float expected = f16_reference(src[i]);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(dst[i])) << "fp16 pattern 0x" << std::hex << src[i];
    } else {
      ASSERT_EQ(bits_of(dst[i]), bits_of(expected))
          << "fp16 pattern 0x" << std::hex << src[i] << ": got " << dst[i] << ", want " << expected;
    }
  }
}

TEST_F(CudaKernelTest, RmsNormMatchesCpu) {
  std::mt19937 rng(kSeed);
  struct Shape { int rows, cols; float eps; };
  const Shape shapes[] = {{1, 1, 1e-5f},   {3, 31, 1e-6f},   {7, 32, 1e-5f},
                          {5, 257, 1e-5f}, {16, 4096, 1e-5f}, {2, 11008, 1e-6f}};
  for (const Shape& s : shapes) {
    SCOPED_TRACE("rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols));
    const std::size_t n = static_cast<std::size_t>(s.rows) * s.cols;
    std::vector<float> x = random_normal(n, rng, 0.0f, 2.0f);
    const std::vector<float> w = random_normal(static_cast<std::size_t>(s.cols), rng, 1.0f, 0.1f);
    if (s.rows > 1) std::fill(x.begin(), x.begin() + s.cols, 0.0f);  // all-zero row: eps only
    std::vector<float> y(n);
    qc::rmsnorm(x.data(), w.data(), y.data(), s.rows, s.cols, s.eps);

    for (int r = 0; r < s.rows; ++r) {
      double sum_sq = 0.0;
      for (int c = 0; c < s.cols; ++c) {
        const double v = x[static_cast<std::size_t>(r) * s.cols + c];
        sum_sq += v * v;
      }
      const double scale = 1.0 / std::sqrt(sum_sq / s.cols + static_cast<double>(s.eps));
      for (int c = 0; c < s.cols; ++c) {
        const std::size_t i = static_cast<std::size_t>(r) * s.cols + c;
        const double ref = x[i] * scale * w[c];
        ASSERT_LE(std::fabs(y[i] - ref), 1e-5 * std::fabs(ref))
            << "r=" << r << " c=" << c << " got " << y[i] << " want " << ref;
      }
    }
  }
}

TEST_F(CudaKernelTest, SiluMulMatchesCpu) {
  std::mt19937 rng(kSeed + 1);
  const std::size_t n = 100003;  // not a multiple of the block size
  std::uniform_real_distribution<float> gate_dist(-30.0f, 30.0f);
  std::vector<float> gate(n);
  for (float& g : gate) g = gate_dist(rng);
  gate[0] = 0.0f;
  const std::vector<float> up = random_normal(n, rng);
  std::vector<float> out(n);
  qc::silu_mul(gate.data(), up.data(), out.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    const double ref = g / (1.0 + std::exp(-g)) * up[i];
    ASSERT_LE(std::fabs(out[i] - ref), 1e-5 * std::fabs(ref))
        << "i=" << i << " gate=" << gate[i] << " up=" << up[i] << " got " << out[i];
  }
}

TEST_F(CudaKernelTest, SgemmXwtMatchesCpu) {
  std::mt19937 rng(kSeed + 2);
  struct Shape { int m, n, k; };
  const Shape shapes[] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 128, 256}, {8, 1000, 512}};
  for (const Shape& s : shapes) {
    SCOPED_TRACE("m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                 " k=" + std::to_string(s.k));
    const std::vector<float> x = random_normal(static_cast<std::size_t>(s.m) * s.k, rng);
    const std::vector<float> w = random_normal(static_cast<std::size_t>(s.n) * s.k, rng);
    std::vector<float> y(static_cast<std::size_t>(s.m) * s.n);
    qc::sgemm_xwt(x.data(), w.data(), y.data(), s.m, s.n, s.k);

    std::vector<double> ref(y.size());
    double max_ref = 0.0;
    for (int i = 0; i < s.m; ++i) {
      for (int j = 0; j < s.n; ++j) {
        double acc = 0.0;
        for (int p = 0; p < s.k; ++p) {
          acc += static_cast<double>(x[static_cast<std::size_t>(i) * s.k + p]) *
                 w[static_cast<std::size_t>(j) * s.k + p];
        }
        ref[static_cast<std::size_t>(i) * s.n + j] = acc;
        max_ref = std::max(max_ref, std::fabs(acc));
      }
    }
    double max_err = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      max_err = std::max(max_err, std::fabs(y[i] - ref[i]));
    }
    EXPECT_LE(max_err, 1e-4 * max_ref) << "max |err| " << max_err << ", max |ref| " << max_ref;
  }
}

}  // namespace

// The staged host<->device copies (kernels/staged_copy.cuh). The threaded memcpy needs no GPU:
// sizes around its 4 MiB-per-thread split and odd offsets, every byte in place.
// The error of each GEMM arithmetic against float64 on 1B-preset reductions (K = 2048, 8192),
// normalised per output by Σ|x·w| (the scale any fp32 summation's error bound is relative to),
// over activations with 1% outliers ×30: printed for the README, and ordered as they must be —
// tf32x3 far closer to fp32 SGEMM than one TF32 product, which is ~2⁻¹¹-class like bf16's 2⁻⁸.
TEST_F(CudaKernelTest, GemmArithmeticErrorsAgainstFloat64) {
  std::mt19937 rng(kSeed + 9);
  const int m = 192, n = 160;
  for (const int k : {2048, 8192}) {
    std::vector<float> x = random_normal(static_cast<std::size_t>(m) * k, rng);
    std::vector<float> w = random_normal(static_cast<std::size_t>(n) * k, rng);
    for (std::size_t i = 0; i < x.size(); i += 97) x[i] *= 30.0f;
    for (float& v : w) v *= 0.02f;
    std::vector<double> ref(static_cast<std::size_t>(m) * n), scale(ref.size());
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double acc = 0, abs = 0;
        for (int p = 0; p < k; ++p) {
          const double t = static_cast<double>(x[static_cast<std::size_t>(i) * k + p]) * w[static_cast<std::size_t>(j) * k + p];
          acc += t, abs += std::fabs(t);
        }
        ref[static_cast<std::size_t>(i) * n + j] = acc, scale[static_cast<std::size_t>(i) * n + j] = abs;
      }
    double err[4] = {}, mean[4] = {};
    const qc::GemmArith ariths[4] = {qc::GemmArith::Fp32, qc::GemmArith::Tf32x3, qc::GemmArith::Tf32, qc::GemmArith::Bf16};
    for (int a = 0; a < 4; ++a) {
      std::vector<float> y(ref.size());
      qc::gemm_xwt(x.data(), w.data(), y.data(), m, n, k, ariths[a]);
      for (std::size_t i = 0; i < y.size(); ++i) {
        const double e = std::fabs(y[i] - ref[i]) / scale[i];
        err[a] = std::max(err[a], e), mean[a] += e / static_cast<double>(y.size());
      }
    }
    std::printf("GEMM error vs float64, K=%d (max | mean of |y - ref| / sum|x*w|): fp32 %.3g | %.3g, tf32x3 %.3g | %.3g, "
                "tf32 %.3g | %.3g, bf16 %.3g | %.3g\n",
                k, err[0], mean[0], err[1], mean[1], err[2], mean[2], err[3], mean[3]);
    EXPECT_LT(err[0], 1e-6) << k;
    EXPECT_LT(err[1], err[2] / 16) << k << ": the split products did not recover fp32's bits";
    EXPECT_LT(err[2], err[3]) << k;
  }
}

TEST(CudaHostCopy, ParallelMemcpyCopiesEveryByte) {
  std::mt19937 rng(kSeed);
  for (std::size_t n : {std::size_t(0), std::size_t(1), (std::size_t(4) << 20) - 1, (std::size_t(8) << 20) + 3,
                        (std::size_t(37) << 20) + 5}) {
    std::vector<unsigned char> src(n + 1), dst(n + 2, 0xAB);
    for (auto& b : src) b = static_cast<unsigned char>(rng());
    qc::parallel_memcpy(dst.data() + 1, src.data() + 1, n);  // odd addresses
    EXPECT_EQ(std::memcmp(dst.data() + 1, src.data() + 1, n), 0) << n << " bytes";
    EXPECT_EQ(dst[0], 0xAB) << "a byte before the copy changed";
    EXPECT_EQ(dst[n + 1], 0xAB) << "a byte after the copy changed";
  }
}

// Through the pinned double buffer and back with 1 MiB pieces: a copy under a quarter piece (the
// plain path), one piece exactly, and 5.5 pieces plus 3 bytes (both buffers reused several times,
// a short last piece), from and to odd host addresses.
TEST_F(CudaKernelTest, StagedCopyRoundTripsEveryByte) {
  constexpr std::size_t kPiece = std::size_t(1) << 20;
  std::mt19937 rng(kSeed + 1);
  for (std::size_t n : {std::size_t(1000), kPiece, kPiece * 11 / 2 + 3}) {
    std::vector<unsigned char> src(n + 1), dst(n + 1, 0);
    for (auto& b : src) b = static_cast<unsigned char>(rng());
    qc::staged_round_trip(0, src.data() + 1, dst.data() + 1, n, kPiece);
    EXPECT_EQ(std::memcmp(dst.data() + 1, src.data() + 1, n), 0) << n << " bytes";
  }
}
