// test_model_families.cc — the qwen3 and minicpm families beyond the logits-vs-NumPy check in
// test_forward_variants.cc: config.json parsing (HF defaults, errors naming config.json and the
// field or tensor), AWQ's folds leaving each family's function unchanged (bit for bit with
// power-of-two scales, to rounding with arbitrary ones), the lm_head's calibration input being
// exactly what the evaluation head feeds lm_head (MiniCPM's ÷ hidden/dim_model_base), and the
// CLI path make-model → info → quantize (rtn, awq, gptq) → eval --quantized → calibrate →
// spectrum on each family.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <random>

#include "core/error.h"
#include "dist/comm.h"
#include "eval/calib_windows.h"
#include "model/forward.h"
#include "model/synthetic_model.h"
#include "quant/awq.h"
#include "quant/quantize_model.h"
#include "test_util.h"

namespace qsweep {
namespace {

SyntheticModelSpec family_spec(const std::string& type) {
  SyntheticModelSpec s;
  s.model_type = type;
  s.hidden = 64;
  s.intermediate = 96;
  s.layers = 2;
  s.heads = 4;
  s.kv_heads = 4;  // MHA, so AWQ's o_proj ← v_proj fold applies too
  s.vocab = 101;
  s.dtype = DType::F32;
  s.seed = 11;
  if (type == "qwen3") s.head_dim = 32;  // q_dim 128 != hidden
  if (type == "minicpm") {
    s.tie_embeddings = true;
    s.scale_emb = 2.5;
    s.scale_depth = 0.6;      // residual × 0.424
    s.dim_model_base = 24;    // lm_head input ÷ 2.667
  }
  return s;
}

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& fn) {
  nlohmann::json j = test::read_json(dir + "/config.json");
  fn(j);
  std::ofstream(dir + "/config.json") << j.dump(2);
}

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw qsweep::Error";
  return "";
}

// ---- config.json ------------------------------------------------------------------------------

TEST(ModelFamilyConfig, Qwen3DefaultsAndTensors) {
  const std::string dir = test::scratch_dir("qwen3-cfg");
  write_synthetic_model(dir, family_spec("qwen3"));
  {
    LlamaWeights m(dir);
    EXPECT_TRUE(m.config().qk_norm);
    EXPECT_FALSE(m.config().mup_scaling);
    EXPECT_EQ(m.config().head_dim, 32);
    EXPECT_EQ(m.load_block(1)->q_norm.size(), 32u);
    EXPECT_EQ(m.load_block(1)->k_norm.size(), 32u);
  }
  // Qwen3Config's head_dim default is 128, not hidden / heads: the checkpoint's [.., 128] shapes
  // no longer match, and the error names the tensor and config.json.
  edit_config(dir, [](nlohmann::json& j) { j.erase("head_dim"); });
  EXPECT_EQ(ModelConfig::from_file(dir + "/config.json").head_dim, 128);
  std::string msg = expect_error([&] { LlamaWeights m(dir); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  edit_config(dir, [](nlohmann::json& j) { j["head_dim"] = 32; j["use_sliding_window"] = true; });
  msg = expect_error([&] { LlamaWeights m(dir); });
  EXPECT_NE(msg.find("use_sliding_window"), std::string::npos) << msg;
}

TEST(ModelFamilyConfig, Qwen3MissingQNorm) {
  // A llama checkpoint relabelled qwen3 lacks the q/k norms: the loader names the tensor.
  const std::string dir = test::scratch_dir("qwen3-noqnorm");
  SyntheticModelSpec s = family_spec("llama");
  s.head_dim = 32;
  write_synthetic_model(dir, s);
  edit_config(dir, [](nlohmann::json& j) { j["model_type"] = "qwen3"; });
  const std::string msg = expect_error([&] { LlamaWeights m(dir); });
  EXPECT_NE(msg.find("model.layers.0.self_attn.q_norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("qwen3"), std::string::npos) << msg;
}

TEST(ModelFamilyConfig, MiniCpmFieldsAndDefaults) {
  const std::string dir = test::scratch_dir("minicpm-cfg");
  write_synthetic_model(dir, family_spec("minicpm"));
  ModelConfig c = ModelConfig::from_file(dir + "/config.json");
  EXPECT_TRUE(c.mup_scaling);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_DOUBLE_EQ(c.scale_emb, 2.5);
  EXPECT_DOUBLE_EQ(c.residual_scale(), 0.6 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(c.logit_divisor(), 64.0 / 24.0);
  // MiniCPMConfig's defaults: the three factors 1, embeddings tied.
  edit_config(dir, [](nlohmann::json& j) {
    j.erase("scale_emb"); j.erase("scale_depth"); j.erase("dim_model_base"); j.erase("tie_word_embeddings");
  });
  c = ModelConfig::from_file(dir + "/config.json");
  EXPECT_DOUBLE_EQ(c.scale_emb, 1.0);
  EXPECT_DOUBLE_EQ(c.residual_scale(), 1.0 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(c.logit_divisor(), 64.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  edit_config(dir, [](nlohmann::json& j) { j["scale_depth"] = -1.4; });
  const std::string msg = expect_error([&] { ModelConfig::from_file(dir + "/config.json"); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scale_depth"), std::string::npos) << msg;
}

TEST(ModelFamilyConfig, UnknownModelTypeListsTheSupportedOnes) {
  const std::string dir = test::scratch_dir("gemma-cfg");
  write_synthetic_model(dir, family_spec("llama"));
  edit_config(dir, [](nlohmann::json& j) { j["model_type"] = "gemma2"; });
  const std::string msg = expect_error([&] { LlamaWeights m(dir); });
  for (const char* want : {"config.json", "model_type", "gemma2", "llama", "mistral", "qwen2", "qwen3", "minicpm"})
    EXPECT_NE(msg.find(want), std::string::npos) << "'" << want << "' not in: " << msg;
}

// ---- AWQ folds ----------------------------------------------------------------------------------

std::vector<float> logits_of(const LlamaWeights& m, std::vector<std::unique_ptr<BlockWeights>>& blocks,
                             const std::vector<int32_t>& ids) {
  const ModelConfig& c = m.config();
  const int n = static_cast<int>(ids.size());
  std::vector<float> x(static_cast<size_t>(n) * c.hidden_size);
  m.embed(ids.data(), n, x.data());
  LlamaForward fwd(c);
  for (auto& b : blocks) fwd.run_block(*b, x.data(), 1, n);
  std::vector<int64_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> logits(static_cast<size_t>(n) * c.vocab_size);
  fwd.head_logits(HeadWeights::load(m), x.data(), rows.data(), n, logits.data());
  return logits;
}

class AwqFold : public ::testing::TestWithParam<std::string> {};

TEST_P(AwqFold, FoldedModelGivesTheSameLogits) {
  const std::string dir = test::scratch_dir("awq-fold-" + GetParam());
  write_synthetic_model(dir, family_spec(GetParam()));
  LlamaWeights m(dir);
  const ModelConfig& c = m.config();
  ASSERT_EQ(c.kv_dim(), c.q_dim());
  std::vector<int32_t> ids(40);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 5) % c.vocab_size);
  auto load_all = [&] {
    std::vector<std::unique_ptr<BlockWeights>> b;
    for (int l = 0; l < c.num_hidden_layers; ++l) b.push_back(m.load_block(l));
    return b;
  };
  auto ref_blocks = load_all();
  const std::vector<float> ref = logits_of(m, ref_blocks, ids);

  std::mt19937 rng(5);
  auto fold_all = [&](std::vector<std::unique_ptr<BlockWeights>>& blocks, const std::function<float()>& draw) {
    auto scales = [&](int k) { std::vector<float> s(k); for (auto& v : s) v = draw(); return s; };
    for (auto& b : blocks) {
      awq_apply_scales(*b, BlockInput::Qkv, scales(c.hidden_size));
      awq_apply_scales(*b, BlockInput::O, scales(c.q_dim()));
      awq_apply_scales(*b, BlockInput::GateUp, scales(c.hidden_size));
      awq_apply_scales(*b, BlockInput::Down, scales(c.intermediate_size));
    }
  };
  // Power-of-two scales: every product and quotient of the fold is exact, so the folded model
  // must reproduce the logits bit for bit — any factor the fold fails to commute with (a norm
  // after the scaled linear, a residual scale) would show.
  std::uniform_int_distribution<int> e(-3, 3);
  auto pow2 = load_all();
  fold_all(pow2, [&] { return std::ldexp(1.0f, e(rng)); });
  EXPECT_EQ(logits_of(m, pow2, ids), ref);
  // Arbitrary scales: equal to rounding.
  std::uniform_real_distribution<float> u(0.25f, 4.0f);
  auto any = load_all();
  fold_all(any, [&] { return u(rng); });
  const std::vector<float> got = logits_of(m, any, ids);
  double max_abs = 0, max_diff = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(ref[k])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(got[k]) - ref[k]));
  }
  EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_abs)) << "max |logit| " << max_abs;
}

INSTANTIATE_TEST_SUITE_P(Families, AwqFold, ::testing::Values("llama", "qwen3", "minicpm"));

// ---- lm_head calibration input ------------------------------------------------------------------

struct HeadSink : QuantizeSink {
  LinearResult head;
  bool got = false;
  void on_block(const BlockResult&) override {}
  void on_lm_head(const LinearResult& r) override { head = r; got = true; }
};

class LmHeadInput : public ::testing::TestWithParam<std::string> {};

// quantize --quantize-lm-head reports the lm_head's output error Σ‖(W − Ŵ)x‖² / (tokens · vocab)
// from the Gram of the inputs it calibrated on. Computed instead from the evaluation head's
// logits (head_logits with W and with Ŵ) on the same hidden states, it must agree: the
// calibration input is what lm_head really receives (for minicpm, ÷ hidden/dim_model_base; a
// missing division would be off by that factor squared, 7.1 here).
TEST_P(LmHeadInput, CalibratedOnWhatTheHeadSees) {
  const std::string dir = test::scratch_dir("lm-head-" + GetParam());
  write_synthetic_model(dir, family_spec(GetParam()));
  LlamaWeights m(dir);
  const ModelConfig& c = m.config();
  CalibWindows calib;
  calib.n = 4;
  calib.seq_len = 24;
  std::mt19937 rng(2);
  for (int i = 0; i < calib.n * calib.seq_len; ++i) calib.tokens.push_back(static_cast<int32_t>(rng() % c.vocab_size));
  QuantizeOptions opt;
  opt.method = parse_method("gptq");
  opt.grid = GridSpec{3, 32, false};
  opt.quantize_lm_head = true;
  opt.propagate = false;  // the final hidden states stay the full-precision ones
  opt.progress = false;
  HeadSink sink;
  quantize_model(m, calib, opt, Comm::local(), &sink);
  ASSERT_TRUE(sink.got);

  const int64_t n = static_cast<int64_t>(calib.n) * calib.seq_len;
  std::vector<float> x(static_cast<size_t>(n) * c.hidden_size);
  m.embed(calib.tokens.data(), n, x.data());
  LlamaForward fwd(c);
  for (int l = 0; l < c.num_hidden_layers; ++l) fwd.run_block(*m.load_block(l), x.data(), calib.n, calib.seq_len);
  std::vector<int64_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = i;
  HeadWeights full = HeadWeights::load(m), quant = full;
  quant.lm_head = sink.head.q.dequantize();
  std::vector<float> a(static_cast<size_t>(n) * c.vocab_size), b(a.size());
  fwd.head_logits(full, x.data(), rows.data(), n, a.data());
  fwd.head_logits(quant, x.data(), rows.data(), n, b.data());
  double se = 0;
  for (size_t k = 0; k < a.size(); ++k) se += (static_cast<double>(a[k]) - b[k]) * (static_cast<double>(a[k]) - b[k]);
  const double want = se / static_cast<double>(a.size());
  EXPECT_NEAR(sink.head.output_error / want, 1.0, 1e-3) << "reported " << sink.head.output_error << ", from logits " << want;
}

INSTANTIATE_TEST_SUITE_P(Families, LmHeadInput, ::testing::Values("llama", "qwen3", "minicpm"));

// ---- the CLI on each family ---------------------------------------------------------------------

class FamilyCli : public ::testing::TestWithParam<std::string> {};

double perplexity_of(const std::string& out) {
  const auto p = out.find("perplexity: ");
  return p == std::string::npos ? NAN : std::stod(out.substr(p + 12));
}

TEST_P(FamilyCli, MakeModelInfoQuantizeEvalCalibrateSpectrum) {
  const std::string t = GetParam();
  const std::string dir = test::scratch_dir("cli-" + t), model = dir + "/model";
  const std::string qs = test::qsweep_binary(), text = dir + "/text.txt";
  {  // 60 kB of the test text: enough windows, quick to tokenize
    std::ifstream in(test::demo_test_text());
    std::string s(60000, '\0');
    in.read(&s[0], static_cast<std::streamsize>(s.size()));
    s.resize(static_cast<size_t>(in.gcount()));
    std::ofstream(text) << s;
  }
  auto run = [&](const std::string& args) {
    const auto r = test::run_command(qs + " " + args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    return r.output;
  };
  run("make-model --output " + model + " --model-type " + t +
      " --hidden 128 --intermediate 256 --layers 2 --heads 4 --kv-heads 2 --head-dim 64 --vocab 2048"
      " --tokenizer " + test::demo_model() + "/tokenizer.model" + (t == "minicpm" ? " --tie-embeddings" : ""));
  const std::string info = run("info --model " + model + " --tensors");
  EXPECT_NE(info.find("model_type: " + t), std::string::npos) << info;
  EXPECT_NE(info.find("family: " + t), std::string::npos) << info;
  if (t == "qwen3") EXPECT_NE(info.find("self_attn.q_norm.weight"), std::string::npos) << info;
  if (t == "minicpm") EXPECT_NE(info.find("scale_emb: 12"), std::string::npos) << info;
  const std::string common = " --ctx 64 --batch 4 -q";
  const double fp = perplexity_of(run("eval --model " + model + " --data " + text + common + " --output-dir " + dir));
  EXPECT_TRUE(std::isfinite(fp));
  for (const char* method : {"rtn", "awq", "gptq"}) {
    const std::string q = dir + "/" + method;
    run(std::string("quantize --model ") + model + " --method " + method + " --calib " + text +
        " --bits 4 --group-size 32 --n-calib 8 --seq-len 64 --quantize-lm-head -q --output-dir " + q);
    const std::string out = run("eval --model " + model + " --data " + text + common + " --quantized " + q +
                                " --kl-divergence --output-dir " + q);
    const double ppl = perplexity_of(out);
    EXPECT_TRUE(std::isfinite(ppl)) << out;
    std::printf("[ %s ] fp ppl %.6g, %s W4 g32 (lm_head too) ppl %.6g\n", t.c_str(), fp, method, ppl);
  }
  run("calibrate --model " + model + " --calib " + text + " --n-calib 4 --seq-len 64 -q --output-dir " + dir + "/cal");
  EXPECT_TRUE(test::path_exists(dir + "/cal/stats.h5"));
  run("spectrum --model " + model + " --precisions fp32,bf16 --no-plots --output-dir " + dir + "/spec");
  EXPECT_TRUE(test::path_exists(dir + "/spec/results.h5"));
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyCli, ::testing::Values("qwen3", "minicpm"));

}  // namespace
}  // namespace qsweep
