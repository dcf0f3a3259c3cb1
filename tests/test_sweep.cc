// test_sweep.cc — job files (syntax, axes, grid order, --set), cell ids (stable under spelling,
// order and explicit defaults; different for different experiments), plan validation messages,
// qsweep diff's comparison rules, the KL reference file, and NaN propagation through exp.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "io/h5_diff.h"
#include "io/h5_writer.h"
#include "io/reference_hidden.h"
#include "model/cpu_ops.h"
#include "sweep/job_file.h"
#include "sweep/sweep_plan.h"
#include "test_util.h"

namespace qsweep {
namespace {

std::string scratch() {
  static std::string d = [] {
    char t[] = "/tmp/qsweep_test_sweep_XXXXXX";
    return std::string(::mkdtemp(t));
  }();
  return d;
}

std::string write_job(const std::string& name, const std::string& text) {
  const std::string p = scratch() + "/" + name;
  std::ofstream(p) << text;
  return p;
}

const char* kHeader = "model = ../m\ncalib = c.txt\neval = e.txt\n";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JobFile, SectionsAxesAndGridOrder) {
  const std::string p = write_job("a.ini", std::string(kHeader) +
                                               "# comment\n[quantize]\nmethod = rtn, awq, gptq  # three\n"
                                               "bits = 3,4\ngroup-size = 64, 128\nn-calib = 128\n"
                                               "[eval]\nctx = 256\nkl-divergence = true\n"
                                               "[spectrum]\nprecisions = fp32,bf16\n");
  const JobFile j = read_job_file(p);
  EXPECT_EQ(j.dir, scratch());
  const std::string parent = scratch().substr(0, scratch().find_last_of('/'));
  EXPECT_EQ(j.resolve("../m"), (parent.empty() ? "" : parent) + "/m");
  EXPECT_EQ(j.resolve("./a/./b/../c"), scratch() + "/a/c");
  EXPECT_EQ(j.resolve("/abs//x/"), "/abs/x");
  JobFile rel;
  rel.dir = "jobs";
  EXPECT_EQ(rel.resolve("../demo/m"), "demo/m");
  EXPECT_EQ(rel.resolve("../../up"), "../up");
  ASSERT_NE(j.find("quantize", "method"), nullptr);
  EXPECT_EQ(j.find("quantize", "method")->values, (std::vector<std::string>{"rtn", "awq", "gptq"}));
  // Commas outside grid sections are part of the value.
  EXPECT_EQ(j.find("spectrum", "precisions")->values, std::vector<std::string>{"fp32,bf16"});
  const auto axes = grid_axes(j);
  ASSERT_EQ(axes.size(), 3u);
  EXPECT_EQ(axes[0].key, "method");
  EXPECT_EQ(axes[2].key, "group-size");
  const auto pts = grid_points(axes);
  ASSERT_EQ(pts.size(), 12u);
  EXPECT_EQ(pts[0], (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(pts[1], (std::vector<int>{0, 0, 1}));  // last axis fastest
  EXPECT_EQ(pts[2], (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(pts[11], (std::vector<int>{2, 1, 1}));
}

TEST(JobFile, SetOverridesAndSyntaxErrors) {
  JobFile j = read_job_file(write_job("b.ini", std::string(kHeader) + "[quantize]\nmethod = rtn\n"));
  apply_set(j, "quantize.bits=2,3");
  apply_set(j, "quantize.method = gptq");
  apply_set(j, "model=/other");
  EXPECT_EQ(j.find("quantize", "bits")->values, (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(j.find("quantize", "method")->values, std::vector<std::string>{"gptq"});
  EXPECT_EQ(j.find("", "model")->raw, "/other");
  EXPECT_NE(error_of([&] { apply_set(j, "bits"); }).find("expected section.key=value"), std::string::npos);
  EXPECT_NE(error_of([&] { read_job_file(write_job("c.ini", std::string(kHeader) + "[quantize]\nbits = 3,,4\n")); })
                .find("[quantize] bits = 3,,4: empty value"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_job_file(write_job("d.ini", std::string(kHeader) + "[quantize]\nbits = 3,4,\n")); })
                .find("trailing comma"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_job_file(scratch() + "/missing.ini"); }).find("missing.ini: cannot open"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_job_file(write_job("e.ini", "this is not a key value line\n")); }).find("e.ini"),
            std::string::npos);
}

std::vector<SweepCell> cells_of(const std::string& name, const std::string& body) {
  return make_sweep_plan(read_job_file(write_job(name, std::string(kHeader) + body))).cells;
}

TEST(SweepPlan, CellIdsAreStableUnderSpellingOrderAndDefaults) {
  const auto a = cells_of("i1.ini", "[quantize]\nmethod = rtn\nbits = 3\n");
  const auto b = cells_of("i2.ini", "[quantize]\nbits = 03\nmethod = rtn\ngroup-size = 128\ngptq-damp = 0.010\n[eval]\nctx=256\n");
  const auto c = cells_of("i3.ini", "[quantize]\nmethod = rtn\nbits = 4\n");
  const auto d = cells_of("i4.ini", "[quantize]\nmethod = rtn\nbits = 3\n[eval]\nactivation-budget-mb = 64\n");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].id.size(), 12u);
  EXPECT_EQ(a[0].id, b[0].id);  // same experiment, other spelling/order/explicit defaults
  EXPECT_NE(a[0].id, c[0].id);  // different bits
  EXPECT_EQ(a[0].id, d[0].id);  // memory budget cannot change a result
  const auto g = cells_of("i5.ini", "[quantize]\nmethod = rtn, gptq\nbits = 3, 4\n");
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[0].id, a[0].id);  // the same cell inside a grid
  EXPECT_EQ(g[1].id, c[0].id);
  EXPECT_EQ(g[2].label, "method=gptq bits=3");
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i].index, static_cast<int>(i));
  EXPECT_STREQ(method_name(g[3].quantize.opt.method), "gptq");
  EXPECT_EQ(g[3].quantize.opt.grid.bits, 4);
}

TEST(SweepPlan, ValidationNamesFileSectionAndKey) {
  auto err = [&](const std::string& body) {
    return error_of([&] { make_sweep_plan(read_job_file(write_job("v.ini", body))); });
  };
  const std::string v = scratch() + "/v.ini: ";
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn\nbitz = 3\n").find(v + "[quantize] bitz: not an option of qsweep quantize"),
            std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn\nbits = x\n").find(v + "[quantize]"), std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn, foo\n").find("foo"), std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn\n[eval]\nkl-divergence = sometimes\n")
                .find("[eval] kl-divergence = sometimes: expected true or false"),
            std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn\nmodel = x\n").find("paths are shared"), std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn\noutput-dir = x\n").find("set by qsweep run"), std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn, rtn\n").find("are the same experiment"), std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "speed = fast\n").find(v + "unknown top-level key 'speed'"), std::string::npos);
  EXPECT_NE(err("calib = c\n[quantize]\nmethod = rtn\n").find("no 'model'"), std::string::npos);
  EXPECT_NE(err("model = m\n[quantize]\nmethod = rtn\n").find("[quantize] needs 'calib'"), std::string::npos);
  EXPECT_NE(err("model = m\neval = e\n[eval]\nctx = 8, 16\n").find("a grid axis needs a [quantize] section"), std::string::npos);
  EXPECT_NE(err(std::string(kHeader) + "[quantize]\nmethod = rtn\ngptq-damp = 0\n").find("--gptq-damp must be positive"),
            std::string::npos);
}

TEST(SweepPlan, BaselinesPerEvaluationSetting) {
  const SweepPlan p = make_sweep_plan(read_job_file(write_job(
      "bl.ini", std::string(kHeader) + "[quantize]\nmethod = rtn\nbits = 3, 4\n[eval]\nctx = 128, 256\nkl-divergence = true\n")));
  ASSERT_EQ(p.cells.size(), 4u);
  ASSERT_EQ(p.baselines.size(), 2u);
  EXPECT_EQ(p.cells[0].baseline, p.cells[2].baseline);  // bits=3 ctx=128 and bits=4 ctx=128
  EXPECT_NE(p.cells[0].baseline, p.cells[1].baseline);
  EXPECT_TRUE(p.baselines[0].eval.kl);
}

TEST(SweepPlan, AllocateVariantsShareScoresAndJoinCells) {
  const std::string body = std::string(kHeader) +
                           "[quantize]\nmethod = gptq\nn-calib = 8\n"
                           "[sensitivity]\nscore = output-error,kl-probe\nprobe-windows = 2\n"
                           "[allocate.A]\nstrategy = conservative, adaptive, aggressive\n"
                           "[allocate.C]\nstrategy = adaptive\ntarget-avg-bits = 3.0, 4, 5.0\n"
                           "[allocate.D]\npalette = 3:128 4:128, 2:64 8:256\ntarget-size-mb = 3.5\nscore = output-error\n";
  const SweepPlan p = make_sweep_plan(read_job_file(write_job("alloc.ini", body)));
  // A's adaptive (natural target 4.0) is C's "4": one cell; 3 + 2 + 2.
  ASSERT_EQ(p.cells.size(), 7u);
  std::vector<std::string> labels;
  for (const auto& c : p.cells) labels.push_back(c.label);
  EXPECT_EQ(labels[1], "A strategy=adaptive");
  EXPECT_EQ(labels[3], "C target-avg-bits=3.0");
  EXPECT_EQ(labels[4], "C target-avg-bits=5.0");
  EXPECT_EQ(labels[5], "D palette=3:128 4:128");
  for (const auto& c : p.cells) {
    EXPECT_TRUE(c.allocated);
    EXPECT_EQ(c.sensitivity, p.cells[0].sensitivity);  // one scoring for every cell
  }
  EXPECT_EQ(p.cells[0].allocate.avg_bits, 5.0);  // conservative's natural target
  EXPECT_EQ(p.cells[2].allocate.avg_bits, 3.0);
  EXPECT_EQ(p.cells[5].alloc_palette.size(), 2u);
  ASSERT_EQ(p.sensitivities.size(), 1u);
  // The union: adaptive (5 x 3) holds conservative and aggressive; D adds 8:256 (2:64 is adaptive's).
  EXPECT_EQ(p.sensitivities[0].palette.size(), 15u);
  EXPECT_TRUE(p.sensitivities[0].has_kl);
  // Another method scores separately; a different budget does not.
  const SweepPlan q = make_sweep_plan(read_job_file(write_job("alloc2.ini",
      std::string(kHeader) + "[quantize]\nmethod = rtn, gptq\n[allocate]\ntarget-avg-bits = 3, 4\n")));
  ASSERT_EQ(q.cells.size(), 4u);
  EXPECT_EQ(q.sensitivities.size(), 2u);
  EXPECT_EQ(q.cells[0].sensitivity, q.cells[1].sensitivity);
  EXPECT_NE(q.cells[0].sensitivity, q.cells[2].sensitivity);
  // Errors before any work.
  auto err = [&](const std::string& extra) {
    return error_of([&] { make_sweep_plan(read_job_file(write_job("bad.ini", std::string(kHeader) + "[quantize]\nmethod = rtn\n" + extra))); });
  };
  EXPECT_NE(err("[allocate]\nstrategy = bold\n").find("expected conservative, adaptive or aggressive"), std::string::npos);
  EXPECT_NE(err("[allocate]\ntarget-avg-bits = 3\ntarget-size-mb = 3\n").find("give one budget"), std::string::npos);
  EXPECT_NE(err("[allocate]\npalette = 3:128\n").find("no budget"), std::string::npos);
  EXPECT_NE(err("[allocate]\ntarget-avg-bits = 3\nscore = kl-probe\n").find("needs [sensitivity] score"), std::string::npos);
  EXPECT_NE(err("[allocate]\ntarget-avg-bits = 3\nscore = fisher\n").find("score = fisher needs [sensitivity] score"), std::string::npos);
  EXPECT_NE(err("[allocate]\ntarget-avg-bits = 3\nscore = alpha\n").find("expected kl-probe, fisher or output-error"), std::string::npos);
  // With fisher scored, an [allocate] cell may plan by it.
  const SweepPlan f = make_sweep_plan(read_job_file(write_job("fisher.ini", std::string(kHeader) +
      "[quantize]\nmethod = rtn\n[sensitivity]\nscore = output-error,fisher\n[allocate]\ntarget-avg-bits = 3\nscore = fisher\n")));
  ASSERT_EQ(f.sensitivities.size(), 1u);
  EXPECT_TRUE(f.sensitivities[0].has_fisher);
  EXPECT_FALSE(f.sensitivities[0].has_kl);
  EXPECT_NE(err("[sensitivity]\nfoo = 1\n").find("not an option of qsweep sensitivity"), std::string::npos);
  EXPECT_NE(err("[allocat]\ntarget-avg-bits = 3\n").find("unknown section"), std::string::npos);
}

TEST(SweepPlan, QuantizeVariantsAreMethodsOfTheStudy) {
  const SweepPlan p = make_sweep_plan(read_job_file(write_job("study.ini", std::string(kHeader) +
      "[quantize]\nmethod = awq\nbits = 3, 4\n[quantize.awq]\nawq-salience = l2\n"
      "[quantize.exact]\nrefine = greedy-exact\n[quantize.praq]\nawq-salience = praq\nnoise-std = 0.01\n")));
  ASSERT_EQ(p.cells.size(), 6u);
  EXPECT_EQ(p.cells[0].label, "awq bits=3");
  EXPECT_EQ(p.cells[3].label, "exact bits=4");
  ASSERT_FALSE(p.axes.empty());
  EXPECT_EQ(p.axes[0].key, "variant");
  EXPECT_EQ(p.axes[0].values, (std::vector<std::string>{"awq", "exact", "praq"}));
  EXPECT_EQ(p.cells[5].quantize.opt.noise_std, 0.01);
  EXPECT_TRUE(p.cells[5].quantize.opt.awq_praq);
  EXPECT_EQ(p.cells[2].quantize.opt.refine, Refine::GreedyExact);
  EXPECT_EQ(p.cells[0].quantize.opt.noise_std, 0.0);  // a variant's keys stay in its sub-grid
  bool has_variant = false;
  for (const auto& [k, v] : p.cells[4].params) has_variant |= k == "quantize.variant" && v == "praq";
  EXPECT_TRUE(has_variant);
  // A variant's key replaces its base section's.
  const SweepPlan q = make_sweep_plan(read_job_file(write_job("study2.ini", std::string(kHeader) +
      "[quantize]\nmethod = awq\nbits = 3\n[quantize.g]\nmethod = gptq\n[quantize.r]\nmethod = rtn\n")));
  ASSERT_EQ(q.cells.size(), 2u);
  EXPECT_STREQ(method_name(q.cells[0].quantize.opt.method), "gptq");
  EXPECT_STREQ(method_name(q.cells[1].quantize.opt.method), "rtn");
}

TEST(SweepPlan, OptionsAddedLaterKeepOldCellIdsAtTheirDefaults) {
  auto id = [&](const std::string& extra) {
    return make_sweep_plan(read_job_file(write_job("ids.ini", std::string(kHeader) + "[quantize]\nmethod = awq\n" + extra)))
        .cells[0].id;
  };
  const std::string base = id("");
  EXPECT_EQ(id("refine = none\noutlier-percent = 0.05\nnoise-std = 0\nn-noise-samples = 3\n"), base);
  EXPECT_NE(id("refine = greedy\n"), base);
  EXPECT_NE(id("noise-std = 0.01\n"), base);
  // --refine-damp is inert unless refine = greedy-exact, and greedy-exact ran undamped before it.
  EXPECT_EQ(id("refine-damp = 0.5\n"), base);
  const std::string exact0 = id("refine = greedy-exact\nrefine-damp = 0\n");
  EXPECT_NE(id("refine = greedy-exact\n"), exact0);  // the default damping is another experiment
  EXPECT_NE(id("refine = greedy-exact\nrefine-damp = 0.5\n"), id("refine = greedy-exact\n"));
  // Block-AP's options are inert for other methods (old ids stay); for blockap they count.
  EXPECT_EQ(id("epochs = 2\ntrain-batch = 2\nquant-lr = 0.001\nval-windows = 0\npatience = 0\n"), base);
}

TEST(H5Diff, ComparesBitsAndIgnoresProvenanceAndTimings) {
  auto make = [&](const std::string& name, double metric, double secs, const std::string& host, float nan_payload) {
    H5Writer w(scratch() + "/" + name);
    w.attr("/", "perplexity", metric);
    w.attr("/", "seconds", secs);
    w.attr("/", "hosts", host);
    w.group("/g");
    w.attr("/g", "eval_seconds", secs);
    w.dataset("/g/x", std::vector<float>{1.0f, nan_payload, -0.0f});
    w.dataset("/g/forward_seconds", std::vector<double>{secs});
    w.commit();
    return scratch() + "/" + name;
  };
  const float nan = std::nanf("");
  const std::string a = make("a.h5", 21.5, 1.0, "h1", nan);
  const std::string b = make("b.h5", 21.5, 9.0, "h2,h3", nan);
  EXPECT_TRUE(h5_diff(a, b).empty());  // NaN == NaN at the same place; timings/hosts ignored
  const std::string c = make("c.h5", std::nextafter(21.5, 22.0), 1.0, "h1", nan);
  const auto d = h5_diff(a, c);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].find("@perplexity"), std::string::npos);
  const std::string e = make("e.h5", 21.5, 1.0, "h1", 2.0f);
  ASSERT_EQ(h5_diff(a, e).size(), 1u);
  EXPECT_NE(h5_diff(a, e)[0].find("g/x"), std::string::npos);
  H5Writer w(scratch() + "/f.h5");
  w.attr("/", "perplexity", 21.5);
  w.commit();
  EXPECT_FALSE(h5_diff(a, scratch() + "/f.h5").empty());  // /g only in a
  EXPECT_TRUE(h5_ignored_name("quantize_seconds"));
  EXPECT_TRUE(h5_ignored_name("tokens_per_second"));
  EXPECT_FALSE(h5_ignored_name("perplexity"));
}

TEST(ReferenceHidden, RoundTripAndShapeCheck) {
  const std::string p = scratch() + "/hidden.f32";
  const ReferenceShape shape{3, 2, 4};
  {
    ReferenceHiddenWriter w(p, shape, Comm::local());
    for (int k = 2; k >= 0; --k) {
      std::vector<float> rows(8);
      for (int i = 0; i < 8; ++i) rows[i] = 100.0f * k + i;
      w.write_window(k, rows.data());
    }
    EXPECT_FALSE(test::path_exists(p));  // appears only on commit
    w.commit();
  }
  ReferenceHidden r(p, shape);
  EXPECT_EQ(r.window(2)[7], 207.0f);
  EXPECT_EQ(r.window(0)[0], 0.0f);
  EXPECT_NE(error_of([&] { ReferenceHidden(p, ReferenceShape{3, 2, 5}); }).find("delete it to recompute"),
            std::string::npos);
  { ReferenceHiddenWriter abandoned(scratch() + "/h2.f32", shape, Comm::local()); }
  EXPECT_FALSE(test::path_exists(scratch() + "/h2.f32"));
}

TEST(CpuOps, ExpAndNllPropagateNaN) {
  std::vector<float> x = {0.0f, 1.0f, std::nanf(""), -1000.0f, 1000.0f};
  exp_inplace(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_NEAR(x[0], 1.0f, 1e-6f);
  EXPECT_NEAR(x[1], std::exp(1.0f), 1e-5f);
  EXPECT_TRUE(std::isnan(x[2]));  // a NaN never turns into a plausible number
  EXPECT_GE(x[3], 0.0f);
  EXPECT_LT(x[3], 1e-37f);
  // A NaN logit anywhere in the row makes that row's NLL NaN.
  std::vector<float> logits = {1.0f, 2.0f, std::nanf(""), 0.5f};
  const int32_t target = 0;
  double nll = 0;
  rows_nll(logits.data(), 1, 4, &target, &nll);
  EXPECT_TRUE(std::isnan(nll));
}

}  // namespace
}  // namespace qsweep
