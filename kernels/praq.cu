// praq.cu — qsweep/cuda/praq.h: Robust-PRAQ's importance on the GPU. Every fp64 step is written
// with explicitly rounded operations (__dmul_rn, __dadd_rn, __ddiv_rn: no contraction into FMAs),
// in the order of stats/praq.cc.
#include "qsweep/cuda/praq.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "check.cuh"
#include "device_buffer.cuh"
#include "gemm_mode.cuh"

namespace qsweep::cuda {

namespace {

constexpr int kThreads = 256;
const char* kHint = "Robust-PRAQ's importance: the gate/up weights and a tile of rows (use a larger GPU)";

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

// sd[t] = σ·sqrt(Σ_j x_tj² / H), the sum in column order (the CPU's).
__global__ void row_sd(const float* x, int64_t rows, int H, double sigma, double* sd) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= rows) return;
  const float* xr = x + t * H;
  double ss = 0;
  for (int j = 0; j < H; ++j) ss = __dadd_rn(ss, __dmul_rn(static_cast<double>(xr[j]), static_cast<double>(xr[j])));
  sd[t] = __dmul_rn(sigma, sqrt(__ddiv_rn(ss, static_cast<double>(H))));
}

// xt = x + sd_t·z (in fp64, rounded to fp32), or a copy of x without noise.
__global__ void noisy_input(const float* x, const double* z, const double* sd, int64_t n, int H, float* xt) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    xt[e] = z ? static_cast<float>(__dadd_rn(static_cast<double>(x[e]), __dmul_rn(sd[e / H], z[e]))) : x[e];
}

// In place: g ← (SiLU'(g)·u)², u ← SiLU(g)², in fp64 as the CPU, rounded to fp32.
__global__ void gains(float* g, float* u, int64_t n) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double gv = g[e], sg = __ddiv_rn(1.0, __dadd_rn(1.0, exp(-gv)));
    const double silu = __dmul_rn(gv, sg), dsilu = __dmul_rn(sg, __dadd_rn(1.0, __dmul_rn(gv, __dadd_rn(1.0, -sg))));
    const double a = __dmul_rn(dsilu, static_cast<double>(u[e]));
    g[e] = static_cast<float>(__dmul_rn(a, a));
    u[e] = static_cast<float>(__dmul_rn(silu, silu));
  }
}

// acc[j] += x̃_tj²·(r_tj / denom_j) / k for t in row order: a thread per channel.
__global__ void accumulate(const float* xt, const float* r, const double* denom, int64_t rows, int H, int k,
                           double* acc) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= H) return;
  double a = acc[j];
  const double dj = denom[j], kd = static_cast<double>(k);
  for (int64_t t = 0; t < rows; ++t) {
    const double xv = xt[t * H + j];
    a = __dadd_rn(a, __ddiv_rn(__dmul_rn(__dmul_rn(xv, xv), __ddiv_rn(static_cast<double>(r[t * H + j]), dj)), kd));
  }
  acc[j] = a;
}

}  // namespace

struct PraqDevice::Impl {
  int ordinal, inter, hidden;
  detail::DeviceBuffer<float> wg, wu, gsq_t, usq_t;
  detail::DeviceBuffer<double> denom;
  detail::DeviceBuffer<float> xt, g, u, r;
  detail::DeviceBuffer<double> z, sd, acc;
  cublasHandle_t blas = nullptr;
  Impl(int ord, const float* w_gate, const float* w_up, const float* gsq, const float* usq, const double* den, int I,
       int H)
      : ordinal(ord), inter(I), hidden(H),
        wg(w_gate, static_cast<std::size_t>(I) * H, "PRAQ's gate weights", kHint),
        wu(w_up, static_cast<std::size_t>(I) * H, "PRAQ's up weights", kHint),
        gsq_t(gsq, static_cast<std::size_t>(I) * H, "PRAQ's squared gate weights", kHint),
        usq_t(usq, static_cast<std::size_t>(I) * H, "PRAQ's squared up weights", kHint),
        denom(den, static_cast<std::size_t>(H), "PRAQ's denominators", kHint),
        xt(static_cast<std::size_t>(kMaxRows) * H, "PRAQ's noisy inputs", kHint),
        g(static_cast<std::size_t>(kMaxRows) * I, "PRAQ's gate outputs", kHint),
        u(static_cast<std::size_t>(kMaxRows) * I, "PRAQ's up outputs", kHint),
        r(static_cast<std::size_t>(kMaxRows) * H, "PRAQ's gains per channel", kHint),
        z(static_cast<std::size_t>(kMaxRows) * H, "PRAQ's noise draws", kHint),
        sd(static_cast<std::size_t>(kMaxRows), "PRAQ's row scales", kHint),
        acc(static_cast<std::size_t>(H), "PRAQ's sums", kHint) {
    CUBLAS_CHECK(cublasCreate(&blas));
  }
  ~Impl() {
    if (blas) cublasDestroy(blas);
  }
};

PraqDevice::PraqDevice(int ordinal, const float* w_gate, const float* w_up, const float* gsq_t, const float* usq_t,
                       const double* denom, int inter, int hidden) {
  CUDA_CHECK(cudaSetDevice(ordinal));
  impl_ = std::make_unique<Impl>(ordinal, w_gate, w_up, gsq_t, usq_t, denom, inter, hidden);
}

PraqDevice::~PraqDevice() = default;

void PraqDevice::add_draw(const float* x_device, int64_t rows, const double* z_host, double sigma, int k,
                          double* acc_host) {
  Impl& m = *impl_;
  if (rows <= 0) return;
  if (rows > kMaxRows) throw std::runtime_error("PraqDevice::add_draw: more rows than kMaxRows");
  CUDA_CHECK(cudaSetDevice(m.ordinal));
  const int H = m.hidden, I = m.inter;
  const int64_t nx = rows * H, ng = rows * I;
  if (z_host) {
    CUDA_CHECK(cudaMemcpy(m.z.get(), z_host, static_cast<std::size_t>(nx) * sizeof(double), cudaMemcpyHostToDevice));
    row_sd<<<blocks_for(rows), kThreads>>>(x_device, rows, H, sigma, m.sd.get());
    CUDA_CHECK_LAUNCH();
  }
  noisy_input<<<blocks_for(nx), kThreads>>>(x_device, z_host ? m.z.get() : nullptr, m.sd.get(), nx, H, m.xt.get());
  CUDA_CHECK_LAUNCH();
  // The planned linear calls (qsweep/cuda/gemm_plan.h): y [rows, out] = x [rows, in]·W [out, in]ᵀ.
  auto linear = [&](const float* x, const float* w, float* y, int in, int out, float beta) {
    GemmCall c = linear_forward_call(static_cast<int>(rows), in, out);
    c.beta = beta;
    float* const ops[kOperands] = {const_cast<float*>(x), const_cast<float*>(w), y};
    detail::issue(m.blas, false, c, ops);  // statistics: fp32 whatever the compute dtype
  };
  linear(m.xt.get(), m.wg.get(), m.g.get(), H, I, 0.0f);
  linear(m.xt.get(), m.wu.get(), m.u.get(), H, I, 0.0f);
  gains<<<blocks_for(ng), kThreads>>>(m.g.get(), m.u.get(), ng);
  CUDA_CHECK_LAUNCH();
  linear(m.g.get(), m.gsq_t.get(), m.r.get(), I, H, 0.0f);
  linear(m.u.get(), m.usq_t.get(), m.r.get(), I, H, 1.0f);
  CUDA_CHECK(cudaMemcpy(m.acc.get(), acc_host, static_cast<std::size_t>(H) * sizeof(double), cudaMemcpyHostToDevice));
  accumulate<<<blocks_for(H), kThreads>>>(m.xt.get(), m.r.get(), m.denom.get(), rows, H, k, m.acc.get());
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpy(acc_host, m.acc.get(), static_cast<std::size_t>(H) * sizeof(double), cudaMemcpyDeviceToHost));
}

}  // namespace qsweep::cuda
