// bench_forward.cc — micro-benchmarks of the CPU forward pass on kjv-llama shapes: OpenBLAS sgemm
// peak (the yardstick every throughput figure is divided by), the block's GEMMs through the
// tiled gemm, attention, the elementwise ops, and a whole block. Counters report GFLOP/s.
//   build/bench/qsweep_bench --benchmark_filter=SgemmPeak
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <random>
#include <vector>

#include "core/threads.h"
#include "model/cpu_ops.h"
#include "model/forward.h"
#include "model/synthetic_model.h"

namespace qsweep {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Peak: large square sgemm with OpenBLAS's own threading over all threads of this process.
void BM_SgemmPeak(benchmark::State& st) {
  const int n = static_cast<int>(st.range(0));
  auto a = random_vec(size_t(n) * n, 1), b = random_vec(size_t(n) * n, 2), c = random_vec(size_t(n) * n, 3);
  for (auto _ : st)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_SgemmPeak)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

ModelConfig kjv_config() {
  ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 32;
  c.vocab_size = 2048;
  c.rms_norm_eps = 1e-5;
  return c;
}

BlockWeights random_block(const ModelConfig& c) {
  BlockWeights b;
  b.index = 0;
  b.hidden = c.hidden_size;
  b.q_dim = c.q_dim();
  b.kv_dim = c.kv_dim();
  b.inter = c.intermediate_size;
  const size_t H = c.hidden_size;
  b.input_norm.assign(H, 1.0f);
  b.post_norm.assign(H, 1.0f);
  b.qkv = random_vec((b.q_dim + 2 * b.kv_dim) * H, 4);
  for (auto& v : b.qkv) v *= 0.06f;
  b.o = random_vec(H * b.q_dim, 5);
  for (auto& v : b.o) v *= 0.06f;
  b.gate_up = random_vec(2 * b.inter * H, 6);
  for (auto& v : b.gate_up) v *= 0.06f;
  b.down = random_vec(H * b.inter, 7);
  for (auto& v : b.down) v *= 0.036f;
  return b;
}

// One decoder block over `windows` sequences of 256 tokens.
void BM_Block(benchmark::State& st) {
  const ModelConfig c = kjv_config();
  const int n_seq = static_cast<int>(st.range(0)), T = 256;
  BlockWeights b = random_block(c);
  auto x0 = random_vec(size_t(n_seq) * T * c.hidden_size, 8);
  LlamaForward fwd(c);
  std::vector<float> x = x0;
  for (auto _ : st) {
    st.PauseTiming();
    x = x0;
    st.ResumeTiming();
    fwd.run_block(b, x.data(), n_seq, T);
  }
  st.counters["GFLOP/s"] = benchmark::Counter(fwd.block_flops(n_seq, T), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  st.counters["tok/s"] = benchmark::Counter(double(n_seq) * T, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Block)->Arg(1)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Attention(benchmark::State& st) {
  const ModelConfig c = kjv_config();
  const int n_seq = 4, T = 256, QKV = c.q_dim() + 2 * c.kv_dim();
  auto qkv = random_vec(size_t(n_seq) * T * QKV, 9);
  std::vector<float> out(size_t(n_seq) * T * c.q_dim());
  AttentionShape s{n_seq, T, c.num_attention_heads, c.num_key_value_heads, c.head_dim, 0};
  for (auto _ : st) attention(qkv.data(), qkv.data() + c.q_dim(), qkv.data() + c.q_dim() + c.kv_dim(), QKV, out.data(), s);
  st.counters["GFLOP/s"] = benchmark::Counter(4.0 * n_seq * T * c.q_dim() * (T / 2.0), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Attention)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeadNll(benchmark::State& st) {
  const ModelConfig c = kjv_config();
  const int64_t n = 4 * 255;
  auto x = random_vec(size_t(n) * c.hidden_size, 10);
  HeadWeights h;
  h.norm.assign(c.hidden_size, 1.0f);
  h.lm_head = random_vec(size_t(c.vocab_size) * c.hidden_size, 11);
  std::vector<int64_t> rows(n);
  std::vector<int32_t> tg(n);
  for (int64_t i = 0; i < n; ++i) { rows[i] = i; tg[i] = int32_t(i % c.vocab_size); }
  std::vector<double> nll(n);
  LlamaForward fwd(c);
  for (auto _ : st) fwd.head_nll(h, x.data(), rows.data(), tg.data(), n, nll.data());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * c.vocab_size * c.hidden_size, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_HeadNll)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RmsNorm(benchmark::State& st) {
  const int64_t rows = 1024;
  const int cols = 256;
  auto x = random_vec(rows * cols, 12), w = random_vec(cols, 13);
  std::vector<float> y(x.size());
  for (auto _ : st) rmsnorm(x.data(), w.data(), y.data(), rows, cols, 1e-5f);
  st.SetBytesProcessed(int64_t(st.iterations()) * rows * cols * 8);
}
BENCHMARK(BM_RmsNorm)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SiluMul(benchmark::State& st) {
  const int64_t rows = 1024;
  const int inter = 768;
  auto gu = random_vec(rows * 2 * inter, 14);
  std::vector<float> act(rows * inter);
  for (auto _ : st) silu_mul(gu.data(), act.data(), rows, inter);
  st.SetBytesProcessed(int64_t(st.iterations()) * rows * inter * 12);
}
BENCHMARK(BM_SiluMul)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace qsweep

int main(int argc, char** argv) {
  qsweep::set_num_threads(qsweep::default_num_threads(1));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
