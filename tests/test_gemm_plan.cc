// test_gemm_plan.cc — the training engine's GEMMs (kernels/include/qsweep/cuda/gemm_plan.h, the
// calls kernels/block_grad.cu gives cuBLAS) run here through CBLAS in column-major order — the
// same argument convention as cuBLAS — with the softmax steps written out, and compared with the
// row-major CPU ops of train/grad_ops.h: linear forward, dx and dW; attention forward and backward
// for MHA, GQA, MQA, two sequences and a sliding window. So every transpose, leading dimension,
// batch stride and GQA offset of the GPU path is checked in CI, where no GPU runs it.
#include <gtest/gtest.h>

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "grad_check.h"
#include "qsweep/cuda/gemm_plan.h"
#include "train/grad_ops.h"

namespace qsweep {
namespace {

using cuda::GemmCall;
using cuda::Operand;

// Executes one planned call on host arrays (ops indexed by Operand), batch by batch.
void run(const GemmCall& g, float* const (&ops)[cuda::kOperands]) {
  const float* A = ops[static_cast<int>(g.a)] + g.a_off;
  const float* B = ops[static_cast<int>(g.b)] + g.b_off;
  float* C = ops[static_cast<int>(g.c)] + g.c_off;
  for (int i = 0; i < g.batch; ++i)
    cblas_sgemm(CblasColMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, g.m, g.n,
                g.k, g.alpha, A + i * g.stride_a, g.lda, B + i * g.stride_b, g.ldb, g.beta, C + i * g.stride_c, g.ldc);
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
    m = std::max(m, std::fabs(static_cast<double>(b[i])));
  }
  return d / m;
}

TEST(GemmPlan, LinearCallsAreTheRowMajorLinearOps) {
  const int M = 7, in = 12, out = 5;
  std::mt19937_64 rng(1);
  auto x = test::randn(size_t(M) * in, rng), W = test::randn(size_t(out) * in, rng), dy = test::randn(size_t(M) * out, rng);
  std::vector<float> y(size_t(M) * out), y_ref(y.size()), dx(x.size()), dx_ref(x.size()), dW(W.size()), dW_ref(W.size(), 0.0f);
  linear_forward<float>(x.data(), W.data(), nullptr, y_ref.data(), M, in, out);
  linear_backward<float>(x.data(), W.data(), dy.data(), M, in, out, dx_ref.data(), dW_ref.data(), nullptr);
  float* fwd[cuda::kOperands] = {x.data(), W.data(), y.data()};
  run(cuda::linear_forward_call(M, in, out), fwd);
  float* bdx[cuda::kOperands] = {dx.data(), W.data(), dy.data()};
  run(cuda::linear_dx_call(M, in, out), bdx);
  float* bdw[cuda::kOperands] = {x.data(), dW.data(), dy.data()};
  run(cuda::linear_dw_call(M, in, out), bdw);
  EXPECT_LE(max_rel(y, y_ref), 1e-6);
  EXPECT_LE(max_rel(dx, dx_ref), 1e-6);
  EXPECT_LE(max_rel(dW, dW_ref), 1e-6);
}

struct AttnCase {
  int n_seq, T, heads, kv_heads, hd, window;
};

class GemmPlanAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(GemmPlanAttention, ForwardAndBackwardAreTheCpuOps) {
  const AttnCase c = GetParam();
  const cuda::AttnShape a{c.n_seq, c.T, c.heads, c.kv_heads, c.hd};
  const int64_t M = int64_t(c.n_seq) * c.T, QKV = a.qkv(), Q = a.q_dim(), KV = a.kv_dim();
  std::mt19937_64 rng(7);
  auto qkv = test::randn(size_t(M) * QKV, rng), dout = test::randn(size_t(M) * Q, rng);
  const AttnDims dims{c.n_seq, c.T, c.heads, c.kv_heads, c.hd, c.window};
  // The CPU ops.
  std::vector<float> out_ref(size_t(M) * Q), probs_ref(dims.probs_size()), dqkv_ref(size_t(M) * QKV);
  attention_forward<float>(qkv.data(), qkv.data() + Q, qkv.data() + Q + KV, QKV, out_ref.data(), probs_ref.data(), dims);
  attention_backward<float>(qkv.data(), qkv.data() + Q, qkv.data() + Q + KV, QKV, probs_ref.data(), dout.data(),
                            dqkv_ref.data(), dqkv_ref.data() + Q, dqkv_ref.data() + Q + KV, dims);
  // The plan, with the softmax steps the CUDA kernels perform (causal_softmax, softmax_backward).
  std::vector<float> probs(size_t(c.n_seq) * c.heads * c.T * c.T, -1.0f), out(size_t(M) * Q, -1.0f),
      dqkv(size_t(M) * QKV, -1.0f), ds(size_t(c.kv_heads) * c.T * c.T);
  float* ops[cuda::kOperands] = {};
  ops[static_cast<int>(Operand::Qkv)] = qkv.data(), ops[static_cast<int>(Operand::Probs)] = probs.data();
  ops[static_cast<int>(Operand::Out)] = out.data(), ops[static_cast<int>(Operand::DQkv)] = dqkv.data();
  ops[static_cast<int>(Operand::DS)] = ds.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
  for (int s = 0; s < c.n_seq; ++s)
    for (int m = 0; m < a.group(); ++m) {
      run(cuda::scores_call(a, s, m, scale), ops);
      float* P = probs.data() + cuda::probs_offset(a, s, m);
      for (int r = 0; r < c.kv_heads * c.T; ++r) {  // causal softmax of every row of the kv_heads blocks
        float* row = P + int64_t(r) * c.T;
        const int i = r % c.T, lo = c.window > 0 ? std::max(0, i - c.window + 1) : 0;
        const float mx = *std::max_element(row + lo, row + i + 1);
        float sum = 0;
        for (int j = lo; j <= i; ++j) sum += row[j] = std::exp(row[j] - mx);
        for (int j = 0; j < c.T; ++j) row[j] = (j >= lo && j <= i) ? row[j] / sum : 0.0f;
      }
      run(cuda::pv_call(a, s, m), ops);
    }
  ops[static_cast<int>(Operand::Out)] = dout.data();  // the backward reads dO in the output's place
  for (int s = 0; s < c.n_seq; ++s)
    for (int m = 0; m < a.group(); ++m) {
      run(cuda::dp_call(a, s, m), ops);
      const float* P = probs.data() + cuda::probs_offset(a, s, m);
      for (int r = 0; r < c.kv_heads * c.T; ++r) {  // dS = P ⊙ (dP − Σ P·dP)
        const float* p = P + int64_t(r) * c.T;
        float* d = ds.data() + int64_t(r) * c.T;
        float dot = 0;
        for (int j = 0; j < c.T; ++j) dot += p[j] * d[j];
        for (int j = 0; j < c.T; ++j) d[j] = p[j] * (d[j] - dot);
      }
      run(cuda::dq_call(a, s, m, scale), ops);
      run(cuda::dk_call(a, s, m, scale), ops);
      run(cuda::dv_call(a, s, m), ops);
    }
  EXPECT_LE(max_rel(out, out_ref), 1e-5);
  EXPECT_LE(max_rel(dqkv, dqkv_ref), 1e-5);
  // The probabilities: the plan's layout (sequence, member, kv head) against the CPU's (sequence, head).
  double worst = 0;
  for (int s = 0; s < c.n_seq; ++s)
    for (int h = 0; h < c.heads; ++h) {
      const int g = h / a.group(), m = h % a.group();
      const float* got = probs.data() + cuda::probs_offset(a, s, m) + int64_t(g) * c.T * c.T;
      const float* want = probs_ref.data() + (int64_t(s) * c.heads + h) * c.T * c.T;
      for (int64_t e = 0; e < int64_t(c.T) * c.T; ++e) worst = std::max(worst, double(std::fabs(got[e] - want[e])));
    }
  EXPECT_LE(worst, 1e-6);
}

// The evaluation forward (block_forward.cu): chunks of Tq queries against keys [0, q0 + tq) in a
// scratch of kv_heads [tq, kn] blocks, then P·V into the output's rows q0.. — a last chunk shorter
// than the others included.
TEST_P(GemmPlanAttention, ChunkedForwardIsTheCpuAttention) {
  const AttnCase c = GetParam();
  const cuda::AttnShape a{c.n_seq, c.T, c.heads, c.kv_heads, c.hd};
  const int64_t M = int64_t(c.n_seq) * c.T, QKV = a.qkv(), Q = a.q_dim(), KV = a.kv_dim();
  std::mt19937_64 rng(8);
  auto qkv = test::randn(size_t(M) * QKV, rng);
  const AttnDims dims{c.n_seq, c.T, c.heads, c.kv_heads, c.hd, c.window};
  std::vector<float> out_ref(size_t(M) * Q), probs_ref(dims.probs_size());
  attention_forward<float>(qkv.data(), qkv.data() + Q, qkv.data() + Q + KV, QKV, out_ref.data(), probs_ref.data(), dims);
  const int Tq = 4;
  std::vector<float> out(size_t(M) * Q, -1.0f), S(size_t(c.kv_heads) * Tq * c.T);
  float* ops[cuda::kOperands] = {};
  ops[static_cast<int>(Operand::Qkv)] = qkv.data(), ops[static_cast<int>(Operand::Out)] = out.data();
  ops[static_cast<int>(Operand::DS)] = S.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
  for (int s = 0; s < c.n_seq; ++s)
    for (int m = 0; m < a.group(); ++m)
      for (int q0 = 0; q0 < c.T; q0 += Tq) {
        const int tq = std::min(Tq, c.T - q0), kn = q0 + tq;
        run(cuda::scores_call(a, s, m, scale, q0, tq, Operand::DS, 0), ops);
        for (int r = 0; r < c.kv_heads * tq; ++r) {  // launch_causal_softmax's rows: query q0 + r % tq
          float* row = S.data() + int64_t(r) * kn;
          const int i = q0 + r % tq, lo = c.window > 0 ? std::max(0, i - c.window + 1) : 0;
          const float mx = *std::max_element(row + lo, row + i + 1);
          float sum = 0;
          for (int j = lo; j <= i; ++j) sum += row[j] = std::exp(row[j] - mx);
          for (int j = 0; j < kn; ++j) row[j] = (j >= lo && j <= i) ? row[j] / sum : 0.0f;
        }
        run(cuda::pv_call(a, s, m, q0, tq, Operand::DS, 0), ops);
      }
  EXPECT_LE(max_rel(out, out_ref), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmPlanAttention,
                         ::testing::Values(AttnCase{1, 9, 4, 4, 8, 0},    // MHA
                                           AttnCase{2, 11, 4, 2, 8, 0},   // GQA, two sequences
                                           AttnCase{1, 10, 6, 1, 4, 0},   // MQA
                                           AttnCase{2, 12, 8, 2, 6, 5}),  // GQA, a sliding window
                         [](const auto& info) {
                           const AttnCase& c = info.param;
                           return "seq" + std::to_string(c.n_seq) + "_h" + std::to_string(c.heads) + "_kv" +
                                  std::to_string(c.kv_heads) + "_w" + std::to_string(c.window);
                         });

}  // namespace
}  // namespace qsweep
