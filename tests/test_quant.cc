// test_quant.cc — the quantizers: the integer grid on hand-checked values (ties, constant and
// negative-only groups, symmetric codes), code packing, GPTQ against a direct (unblocked,
// explicit-inverse) computation, AWQ folding leaving the full-precision function unchanged, the
// AWQ search never losing to plain RTN, and quantize → quantized.h5 → rebuild being exact.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "io/quant_store.h"
#include "model/synthetic_model.h"
#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/grid.h"
#include "test_util.h"

namespace qsweep {
namespace {

TEST(QuantGrid, AsymmetricByHand) {
  // 2 bits: values -1, 0, 0.5, 2: min -1, max 2, s = 3/3 = 1, z = round(1) = 1;
  // q = clamp(round(w/s) + z): -1 -> 0, 0 -> 1, 0.5 -> round(0.5)=0 (tie to even) + 1 = 1, 2 -> 3.
  GridSpec g{2, 4, false};
  const float w[4] = {-1.0f, 0.0f, 0.5f, 2.0f};
  const QuantizedLinear q = quantize_rtn(w, 1, 4, g);
  EXPECT_FLOAT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(q.zeros[0], 1);
  EXPECT_EQ(std::vector<int>(q.codes.begin(), q.codes.end()), (std::vector<int>{0, 1, 1, 3}));
  const auto d = q.dequantize();
  EXPECT_EQ(d, (std::vector<float>{-1.0f, 0.0f, 0.0f, 2.0f}));
  // 1.5 is also a tie: round(1.5) = 2 (even) -> code 3, value 2.
  const float w2[4] = {-1.0f, 1.5f, 2.0f, 0.0f};
  EXPECT_EQ(quantize_rtn(w2, 1, 4, g).codes[1], 3);
}

TEST(QuantGrid, ConstantAndNegativeOnlyGroups) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(1e-3f, 10.0f);
  for (int bits = 2; bits <= 8; ++bits) {
    GridSpec g{bits, 8, false};
    for (int t = 0; t < 200; ++t) {
      // Constant c > 0: the range widens to [0, c], so c is the top of the grid and comes back
      // as (qmax · (c/qmax)) — c to within one ulp of fp32 (rounding of the scale).
      const float c = u(rng);
      std::vector<float> w(8, c);
      const auto d = quantize_rtn(w.data(), 1, 8, g).dequantize();
      for (float v : d) EXPECT_LE(std::fabs(v - c), std::nextafter(c, 2 * c) - c) << bits << " " << c;
      // All negative: the range widens to [min, 0]; every value within s/2.
      std::vector<float> n(8);
      for (auto& x : n) x = -u(rng);
      const QuantizedLinear q = quantize_rtn(n.data(), 1, 8, g);
      const auto dn = q.dequantize();
      for (int i = 0; i < 8; ++i) EXPECT_LE(std::fabs(dn[i] - n[i]), q.scales[0] / 2 * (1 + 1e-6f));
    }
  }
}

TEST(QuantGrid, SymmetricCodesAreOffset) {
  // 3 bits sym: s = max|w| / 3; codes = clamp(round(w/s), -4, 3) + 4.
  GridSpec g{3, 4, true};
  const float w[4] = {-3.0f, -1.0f, 1.5f, 3.0f};
  const QuantizedLinear q = quantize_rtn(w, 1, 4, g);
  EXPECT_FLOAT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(q.zeros[0], 4);
  EXPECT_EQ(std::vector<int>(q.codes.begin(), q.codes.end()), (std::vector<int>{1, 3, 6, 7}));  // 1.5 -> 2 (tie to even)
}

TEST(QuantGrid, PerRowGroupAndGroupCount) {
  GridSpec g{4, -1, false};
  EXPECT_EQ(g.groups(768), 1);
  GridSpec h{4, 64, false};
  EXPECT_EQ(h.groups(768), 12);
  EXPECT_DOUBLE_EQ(quantized_bits(2, 128, h), 2 * 128 * 4 + 2 * 2 * (16 + 4));
}

TEST(QuantGrid, ShorterLastGroupWhenTheSizeDoesNotDivide) {
  // 10 columns in groups of 4: groups [0,4), [4,8) and a last group [8,10) of 2 columns whose
  // grid comes from those two values alone (SmolLM2's 576 = 4 x 128 + 64 at g128).
  GridSpec g{3, 4, false};
  const float w[10] = {0.1f, -0.2f, 0.3f, 0.4f, -1.0f, 2.0f, 0.5f, 0.0f, 5.0f, 6.0f};
  EXPECT_EQ(g.groups(10), 3);
  const QuantizedLinear q = quantize_rtn(w, 1, 10, g);
  ASSERT_EQ(q.scales.size(), 3u);
  const GroupParams last = grid_params(w + 8, 2, g);
  EXPECT_EQ(q.scales[2], last.scale);
  EXPECT_EQ(q.zeros[2], last.zero);
  const std::vector<float> back = q.dequantize();
  for (int c = 8; c < 10; ++c) EXPECT_EQ(back[c], grid_value(grid_code(w[c], last, 3), last));
  EXPECT_DOUBLE_EQ(quantized_bits(1, 10, g), 10 * 3 + 3 * (16 + 3));
}

TEST(QuantPacking, KnownBitsAndRoundTrip) {
  // 3-bit codes 1, 2, 3: stream bits (LSB first) 100 010 110 -> byte0 = 0b11010001, byte1 = 0.
  const auto p = pack_codes({1, 2, 3}, 3);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], 0xD1);
  EXPECT_EQ(p[1], 0x00);
  std::mt19937 rng(2);
  for (int bits = 2; bits <= 8; ++bits) {
    std::vector<uint8_t> c(1001);
    for (auto& v : c) v = static_cast<uint8_t>(rng() % (1u << bits));
    EXPECT_EQ(unpack_codes(pack_codes(c, bits), bits, c.size()), c) << bits;
  }
  // The word-at-a-time packing against the layout written out bit by bit: every width, every
  // tail length, and past the threaded threshold.
  for (int bits = 1; bits <= 8; ++bits)
    for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(9), size_t(23), (size_t(1) << 20) + 13}) {
      std::vector<uint8_t> c(n);
      for (auto& v : c) v = static_cast<uint8_t>(rng() % (1u << bits));
      std::vector<uint8_t> want((n * bits + 7) / 8, 0);
      size_t bit = 0;
      for (uint8_t v : c)
        for (int b = 0; b < bits; ++b, ++bit)
          if (v >> b & 1) want[bit >> 3] |= static_cast<uint8_t>(1u << (bit & 7));
      ASSERT_EQ(pack_codes(c, bits), want) << bits << " bits, " << n << " codes";
    }
  for (int bits : {3, 4}) {  // past the threaded-unpack threshold, odd length
    std::vector<uint8_t> c((1u << 20) + 77);
    for (auto& v : c) v = static_cast<uint8_t>(rng() % (1u << bits));
    EXPECT_EQ(unpack_codes(pack_codes(c, bits), bits, c.size()), c) << bits;
  }
}

TEST(QuantPacking, DequantizeMatchesThePerWeightFormula) {
  // Groups of 128 over 300 columns (a short last group), per-row groups, and act-order's g_idx.
  std::mt19937 rng(5);
  for (int variant = 0; variant < 3; ++variant) {
    QuantizedLinear q;
    q.out = 37;
    q.in = 300;
    q.grid.bits = 4;
    q.grid.group_size = variant == 1 ? -1 : 128;
    const int ng = q.grid.groups(q.in);
    q.codes.resize(static_cast<size_t>(q.out) * q.in);
    for (auto& v : q.codes) v = static_cast<uint8_t>(rng() % 16);
    for (int i = 0; i < q.out * ng; ++i) {
      q.scales.push_back(0.01f * static_cast<float>(1 + rng() % 100));
      q.zeros.push_back(static_cast<int32_t>(rng() % 16));
    }
    if (variant == 2)
      for (int c = 0; c < q.in; ++c) q.g_idx.push_back(static_cast<int32_t>(rng() % ng));
    const std::vector<float> w = q.dequantize();
    for (int r = 0; r < q.out; ++r)
      for (int c = 0; c < q.in; ++c) {
        const int gi = variant == 2 ? q.g_idx[c] : variant == 1 ? 0 : c / 128;
        const float want = static_cast<float>(q.codes[r * q.in + c] - q.zeros[r * ng + gi]) * q.scales[r * ng + gi];
        ASSERT_EQ(w[r * q.in + c], want) << variant << " " << r << " " << c;
      }
  }
}

// Direct GPTQ: one column at a time with the explicit inverse Hessian, removing each quantized
// column from the inverse (the OBQ update), no blocks, no Cholesky.
std::vector<float> direct_gptq(std::vector<double> W, int out, int in, std::vector<double> H,
                               const GridSpec& g, double damp) {
  double md = 0;
  for (int i = 0; i < in; ++i) md += H[i * in + i];
  md /= in;
  for (int i = 0; i < in; ++i) H[i * in + i] += damp * md;
  // Invert by Gauss-Jordan.
  std::vector<double> A = H, I(static_cast<size_t>(in) * in, 0.0);
  for (int i = 0; i < in; ++i) I[i * in + i] = 1;
  for (int c = 0; c < in; ++c) {
    const double p = A[c * in + c];
    for (int j = 0; j < in; ++j) { A[c * in + j] /= p; I[c * in + j] /= p; }
    for (int r = 0; r < in; ++r)
      if (r != c) {
        const double f = A[r * in + c];
        for (int j = 0; j < in; ++j) { A[r * in + j] -= f * A[c * in + j]; I[r * in + j] -= f * I[c * in + j]; }
      }
  }
  std::vector<double>& Hi = I;
  std::vector<float> Q(static_cast<size_t>(out) * in);
  const int G = g.group_len(in);
  std::vector<GroupParams> params(out);
  for (int i = 0; i < in; ++i) {
    for (int r = 0; r < out; ++r) {
      if (i % G == 0) {
        const int n = std::min(G, in - i);  // a shorter last group when G does not divide in
        std::vector<float> grp(n);
        for (int c = 0; c < n; ++c) grp[c] = static_cast<float>(W[r * in + i + c]);
        params[r] = grid_params(grp.data(), n, g);
      }
      const float wv = static_cast<float>(W[r * in + i]);
      const float q = grid_value(grid_code(wv, params[r], g.bits), params[r]);
      Q[r * in + i] = q;
      const double e = (W[r * in + i] - q) / Hi[i * in + i];
      for (int j = i + 1; j < in; ++j) W[r * in + j] -= e * Hi[i * in + j];
    }
    // Remove column i from the inverse: Hi -= Hi[:, i] Hi[i, :] / Hi[i, i].
    const double d = Hi[i * in + i];
    std::vector<double> col(in), row(in);
    for (int j = 0; j < in; ++j) { col[j] = Hi[j * in + i]; row[j] = Hi[i * in + j]; }
    for (int a = 0; a < in; ++a)
      for (int b = 0; b < in; ++b) Hi[a * in + b] -= col[a] * row[b] / d;
  }
  return Q;
}

TEST(QuantGptq, MatchesDirectComputation) {
  const int out = 3, in = 8;
  std::mt19937 rng(4);
  std::normal_distribution<double> nd;
  std::vector<float> w(out * in);
  for (auto& v : w) v = static_cast<float>(nd(rng));
  std::vector<double> X(40 * in);
  for (auto& v : X) v = nd(rng);
  for (int t = 0; t < 40; ++t) X[t * in + 3] *= 5;  // an outlier channel
  std::vector<double> xtx(in * in, 0.0);
  for (int t = 0; t < 40; ++t)
    for (int a = 0; a < in; ++a)
      for (int b = 0; b < in; ++b) xtx[a * in + b] += X[t * in + a] * X[t * in + b];
  std::vector<double> H(xtx.size());
  for (size_t k = 0; k < H.size(); ++k) H[k] = 2 * xtx[k] / 40;
  for (int group : {-1, 4, 3}) {
    GridSpec g{3, group, false};
    GptqOptions o;
    o.block_size = 3;  // blocks that straddle groups exercise the lazy updates
    if (group > 0) o.block_size = group;  // the reference takes group grids at block start
    // group 3 on 8 columns: groups of 3, 3 and a shorter last one of 2
    const GptqResult r = gptq_quantize(w.data(), out, in, xtx, 40, g, o);
    const std::vector<float> got = r.q.dequantize();
    const std::vector<float> want = direct_gptq(std::vector<double>(w.begin(), w.end()), out, in, H, g, 0.01);
    for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-5) << "group " << group << " k " << k;
    EXPECT_DOUBLE_EQ(r.damp_used, 0.01);
  }
}

TEST(QuantGptq, BeatsRtnOnOutputErrorAndHandlesDeadColumns) {
  const int out = 16, in = 32, T = 200;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> w(out * in), X(T * in);
  for (auto& v : w) v = nd(rng);
  for (auto& v : X) v = nd(rng);
  for (int t = 0; t < T; ++t) X[t * in + 7] = 0.0f;  // dead input channel
  std::vector<double> xtx(in * in);
  gram_xtx(X.data(), T, in, xtx.data());
  GridSpec g{3, 16, false};
  const GptqResult r = gptq_quantize(w.data(), out, in, xtx, T, g, {});
  EXPECT_EQ(r.dead_columns, 1);
  const auto gq = r.q.dequantize();
  for (int row = 0; row < out; ++row) EXPECT_EQ(gq[row * in + 7], 0.0f);
  const auto rq = quantize_rtn(w.data(), out, in, g).dequantize();
  EXPECT_LT(output_sq_error(w.data(), gq.data(), out, in, xtx), output_sq_error(w.data(), rq.data(), out, in, xtx));
  // act-order with static groups keeps each column's original group and records g_idx.
  GptqOptions ao;
  ao.act_order = true;
  const GptqResult a = gptq_quantize(w.data(), out, in, xtx, T, g, ao);
  ASSERT_EQ(a.q.g_idx.size(), static_cast<size_t>(in));
  EXPECT_EQ(a.q.g_idx[20], 1);
  const auto aq = a.q.dequantize();
  EXPECT_LT(output_sq_error(w.data(), aq.data(), out, in, xtx), output_sq_error(w.data(), rq.data(), out, in, xtx));
}

class QuantModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("quant-model");
    SyntheticModelSpec s;
    s.hidden = 64; s.intermediate = 128; s.layers = 2; s.heads = 4; s.kv_heads = 4; s.vocab = 97;
    s.dtype = DType::F32;
    write_synthetic_model(dir_, s);
  }
  std::string dir_;
};

TEST_F(QuantModel, AwqFoldingPreservesTheFunction) {
  LlamaWeights m(dir_);
  const ModelConfig& c = m.config();
  std::vector<int32_t> ids = {1, 4, 9, 16, 25, 36, 49, 64, 81, 3, 7, 11};
  const int n = static_cast<int>(ids.size());
  std::vector<float> x0(static_cast<size_t>(n) * c.hidden_size);
  m.embed(ids.data(), n, x0.data());
  LlamaForward fwd(c);
  auto b = m.load_block(0);
  std::vector<float> ref = x0;
  fwd.run_block(*b, ref.data(), 1, n);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.25f, 4.0f);
  auto scales = [&](int k) { std::vector<float> s(k); for (auto& v : s) v = u(rng); return s; };
  awq_apply_scales(*b, BlockInput::Qkv, scales(c.hidden_size));
  awq_apply_scales(*b, BlockInput::O, scales(c.q_dim()));  // MHA model: v's rows feed o
  awq_apply_scales(*b, BlockInput::GateUp, scales(c.hidden_size));
  awq_apply_scales(*b, BlockInput::Down, scales(c.intermediate_size));
  std::vector<float> got = x0;
  fwd.run_block(*b, got.data(), 1, n);
  for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], ref[k], 2e-4 * (1 + std::fabs(ref[k]))) << k;
}

TEST_F(QuantModel, AwqSearchNeverLosesToRtn) {
  // α = 0 is plain RTN, so the chosen α's error is at most RTN's.
  const int out = 24, in = 64, T = 300;
  std::mt19937 rng(6);
  std::normal_distribution<float> nd;
  std::vector<float> w(out * in), X(T * in);
  for (auto& v : w) v = nd(rng);
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < in; ++c) X[t * in + c] = nd(rng) * (c % 16 == 0 ? 20.0f : 1.0f);  // outlier channels
  std::vector<double> xtx(in * in), sal(in, 0.0);
  gram_xtx(X.data(), T, in, xtx.data());
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < in; ++c) sal[c] += std::fabs(X[t * in + c]) / T;
  GridSpec g{3, 32, false};
  const AwqSearch s = awq_search({w.data()}, {out}, in, xtx, sal, {g}, 20);
  ASSERT_EQ(s.errors.size(), 20u);
  EXPECT_LE(*std::min_element(s.errors.begin(), s.errors.end()), s.errors[0]);
  EXPECT_LT(s.errors[static_cast<size_t>(std::lround(s.alpha * 20))], s.errors[0]);  // outliers: AWQ helps
}

TEST(QuantAwqClip, NeverIncreasesTheOutputError) {
  // Shrink 0 (no clipping) is a candidate, so the clipped weights' output error is at most the
  // unclipped one's, group by group; with a heavy-tailed row it is strictly smaller.
  const int out = 8, in = 64, T = 200;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::student_t_distribution<float> heavy(2.0f);
  std::vector<float> w(out * in), X(T * in);
  for (auto& v : w) v = heavy(rng);
  for (auto& v : X) v = nd(rng);
  std::vector<double> G(in * in);
  gram_xtx(X.data(), T, in, G.data());
  for (int group : {32, 24}) {  // 24: groups of 24, 24 and a shorter last one of 16
    GridSpec g{3, group, false};
    std::vector<float> clipped = w;
    const double shrink = awq_clip(clipped.data(), out, in, G, g);
    EXPECT_GT(shrink, 0.0);
    const auto q0 = quantize_rtn(w.data(), out, in, g).dequantize();
    const auto q1 = quantize_rtn(clipped.data(), out, in, g).dequantize();
    EXPECT_LT(output_sq_error(w.data(), q1.data(), out, in, G), output_sq_error(w.data(), q0.data(), out, in, G))
        << "group " << group;
  }
}

struct Capture : QuantizeSink {
  QuantizedFileWriter file;
  std::vector<std::vector<std::vector<float>>> deq;  // [block][linear]
  explicit Capture(const std::string& p) : file(p) {}
  std::vector<float> head;
  void on_lm_head(const LinearResult& r) override {
    file.on_lm_head(r);
    head = r.q.dequantize();
  }
  void on_block(const BlockResult& b) override {
    file.on_block(b);
    deq.emplace_back();
    for (const auto& l : b.linears) deq.back().push_back(l.q.dequantize());
  }
};

TEST_F(QuantModel, QuantizeRebuildRoundTripsExactly) {
  LlamaWeights m(dir_);
  std::vector<int32_t> doc(3000);
  std::mt19937 rng(8);
  for (auto& t : doc) t = static_cast<int32_t>(3 + rng() % 90);
  const CalibWindows cw = sample_calib_windows(doc, {1}, 8, 32, 0, "test");
  for (const QuantMethodDef* method : {parse_method("rtn"), parse_method("gptq"), parse_method("awq")}) {
    QuantizeOptions opt;
    opt.method = method;
    opt.grid = {3, 32, false};
    opt.calib_chunk = 2;
    opt.progress = false;
    opt.quantize_lm_head = std::string(method_name(method)) != "awq";
    const std::string path = dir_ + "/q_" + method_name(method) + ".h5";
    {
      Capture cap(path);
      quantize_model(m, cw, opt, Comm::local(), &cap);
      cap.file.writer().attr("/", "format", std::string("qsweep-quantized"));
      cap.file.writer().attr("/", "method", std::string(method_name(method)));
      cap.file.writer().attr("/", "bits", int64_t(3));
      cap.file.writer().attr("/", "group_size", int64_t(32));
      cap.file.writer().attr("/", "complete", int64_t(1));
      cap.file.writer().commit();
      QuantizedModel qm(path);
      for (int b = 0; b < 2; ++b) {
        auto bw = m.load_block(b);
        qm.apply(*bw);
        for (int l = 0; l < kNumLinear; ++l) {
          const Linear L = static_cast<Linear>(l);
          const float* got = bw->linear(L);
          const auto& want = cap.deq[b][l];
          ASSERT_TRUE(std::equal(want.begin(), want.end(), got)) << method_name(method) << " block " << b << " " << l;
        }
      }
      EXPECT_EQ(qm.has_lm_head(), opt.quantize_lm_head);
      if (opt.quantize_lm_head) {
        std::vector<float> head;
        qm.apply_lm_head(head, m.config().vocab_size, m.config().hidden_size);
        EXPECT_EQ(head, cap.head);
      }
    }
  }
}

TEST_F(QuantModel, NoPropagateChangesOnlyLaterBlocks) {
  // Block 0 sees the same (full-precision) inputs either way; block 1 sees quantized block 0's
  // outputs only in sequential mode, so GPTQ's codes there differ.
  LlamaWeights m(dir_);
  std::vector<int32_t> doc(3000);
  std::mt19937 rng(10);
  for (auto& t : doc) t = static_cast<int32_t>(3 + rng() % 90);
  const CalibWindows cw = sample_calib_windows(doc, {1}, 8, 32, 0, "test");
  struct Codes : QuantizeSink {
    std::vector<std::vector<uint8_t>> codes;
    void on_block(const BlockResult& b) override {
      for (const auto& l : b.linears) codes.push_back(l.q.codes);
    }
  } seq, flat;
  QuantizeOptions opt;
  opt.method = parse_method("gptq");
  opt.grid = {3, 32, false};
  opt.progress = false;
  quantize_model(m, cw, opt, Comm::local(), &seq);
  opt.propagate = false;
  quantize_model(m, cw, opt, Comm::local(), &flat);
  ASSERT_EQ(seq.codes.size(), 14u);
  for (int l = 0; l < 7; ++l) EXPECT_EQ(seq.codes[l], flat.codes[l]) << "block 0 linear " << l;
  bool differs = false;
  for (int l = 7; l < 14; ++l) differs = differs || seq.codes[l] != flat.codes[l];
  EXPECT_TRUE(differs);
}

TEST_F(QuantModel, BadOptionsAndCalibration) {
  LlamaWeights m(dir_);
  QuantizeOptions opt;
  opt.grid = {9, 32, false};
  EXPECT_THROW(validate_quantize_options(m, opt), Error);
  opt.grid = {1, 32, false};
  EXPECT_THROW(validate_quantize_options(m, opt), Error);
  opt.grid = {4, 48, false};  // does not divide 64: a shorter last group, as GPTQ's reference does
  EXPECT_NO_THROW(validate_quantize_options(m, opt));
  opt.grid = {4, 0, false};
  EXPECT_THROW(validate_quantize_options(m, opt), Error);
  opt.grid = {4, -1, false};
  EXPECT_NO_THROW(validate_quantize_options(m, opt));
  opt.plan["model.layers.9.mlp.up_proj"] = {4, 32, false};
  EXPECT_THROW(validate_quantize_options(m, opt), Error);
  EXPECT_THROW(sample_calib_windows(std::vector<int32_t>(10, 5), {1}, 4, 32, 0, "short.txt"), Error);
  EXPECT_THROW(parse_method("hqq"), Error);
}

}  // namespace
}  // namespace qsweep
