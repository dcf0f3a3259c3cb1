// input_stats.cu — qsweep/cuda/input_stats.h: a block per sequence for its RMS (a fixed reduction
// tree, so the result does not vary from run to run), then a thread per channel walking the rows in
// the CPU's tile order.
#include "qsweep/cuda/input_stats.h"

#include <cuda_runtime.h>

#include <string>

#include "check.cuh"
#include "device_buffer.cuh"

namespace qsweep::cuda {

namespace {

constexpr int kThreads = 256;

// cut[q] = threshold · RMS of sequence q's rows.
__global__ void sequence_cut(const float* x, int64_t rows, int cols, int seq_len, double threshold, double* cut) {
  __shared__ double part[kThreads];
  const int64_t q = blockIdx.x;
  const int64_t r0 = q * seq_len, r1 = min(rows, r0 + seq_len);
  const std::size_t e0 = static_cast<std::size_t>(r0) * cols, e1 = static_cast<std::size_t>(r1) * cols;
  double s = 0;
  for (std::size_t e = e0 + threadIdx.x; e < e1; e += kThreads) {
    const double v = x[e];
    s += v * v;
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) cut[q] = threshold * sqrt(part[0] / (static_cast<double>(r1 - r0) * cols));
}

// One thread per channel: the CPU's tiles (tile_rows rows inside a sequence), each summed from zero
// and added to the totals in order.
__global__ void channel_sums(const float* x, int64_t rows, int cols, int seq_len, int tile_rows, const double* cut,
                             double* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double t[kNumInputStatFields] = {};
  const int64_t n_seq = (rows + seq_len - 1) / seq_len;
  for (int64_t q = 0; q < n_seq; ++q) {
    const double ct = cut[q];
    const int64_t end = min(rows, (q + 1) * seq_len);
    for (int64_t r0 = q * seq_len; r0 < end; r0 += tile_rows) {
      const int64_t r1 = min(end, r0 + tile_rows);
      double p[kNumInputStatFields] = {};
      for (int64_t r = r0; r < r1; ++r) {
        const double v = x[static_cast<std::size_t>(r) * cols + c], a = fabs(v), v2 = v * v;  // v² exact
        p[kSumSq] += v2;
        p[kSumAbs] += a;
        p[kSum] += v;
        p[kMaxAbs] = a > p[kMaxAbs] ? a : p[kMaxAbs];
        p[kM1] += v;
        p[kM2] += v2;
        p[kM3] += v2 * v;
        p[kM4] += v2 * v2;
        p[kBelow] += a < ct ? 1.0 : 0.0;
      }
      for (int f = 0; f < kNumInputStatFields; ++f)
        t[f] = f == kMaxAbs ? (p[f] > t[f] ? p[f] : t[f]) : t[f] + p[f];
    }
  }
  for (int f = 0; f < kNumInputStatFields; ++f) out[static_cast<std::size_t>(f) * cols + c] = t[f];
}

}  // namespace

void input_stats(const float* x, int64_t rows, int cols, int seq_len, int tile_rows, double threshold, int ordinal,
                 double* out_host) {
  if (rows <= 0 || cols <= 0) return;
  CUDA_CHECK(cudaSetDevice(ordinal));
  const int64_t n_seq = (rows + seq_len - 1) / seq_len;
  const std::size_t out_n = static_cast<std::size_t>(kNumInputStatFields) * cols;
  const char* hint = "lower --calib-chunk";
  detail::DeviceBuffer<double> cut(static_cast<std::size_t>(n_seq), "the activation statistics' RMS", hint);
  detail::DeviceBuffer<double> out(out_n, "the activation statistics", hint);
  double* cd = cut.get();
  double* od = out.get();
  // The default stream: x was written by the forward's stream, which the caller has synchronized.
  sequence_cut<<<static_cast<unsigned>(n_seq), kThreads>>>(x, rows, cols, seq_len, threshold, cd);
  CUDA_CHECK_LAUNCH();
  channel_sums<<<static_cast<unsigned>((cols + 127) / 128), 128>>>(x, rows, cols, seq_len, tile_rows, cd, od);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpy(out_host, od, out_n * sizeof(double), cudaMemcpyDeviceToHost));
}

}  // namespace qsweep::cuda
