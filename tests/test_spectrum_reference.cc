// test_spectrum_reference.cc — every metric of `qsweep spectrum` on all 29 linear layers of the
// real kjv-llama model, in all four precisions, against the independent float64 NumPy reference
// (tests/reference/spectrum_ref.py: numpy.linalg.eigvalsh of the same Gram matrices, its own
// bf16/fp16 rounding, WeightWatcher's power-law fit re-implemented from its definition).
#include <gtest/gtest.h>

#include <cmath>

#include "stats/spectrum.h"
#include "test_util.h"

namespace qsweep {
namespace {

void expect_close(double got, double want, double rel, const std::string& what) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what;
    return;
  }
  EXPECT_NEAR(got, want, rel * std::max(1.0, std::fabs(want))) << what;
}

TEST(SpectrumReference, AllLayersAllPrecisionsMatchNumpy) {
  std::string model = test::shared_dir() + "/models/kjv-llama/fp32";
  if (!test::path_exists(model + "/config.json")) model = test::demo_model();
  const std::string out = test::scratch_dir("spectrum-ref") + "/ref.json";
  const auto run = test::run_command("/usr/bin/python3 " + test::source_dir() +
                                     "/tests/reference/spectrum_ref.py --model " + model +
                                     " --all-layers --precisions fp64,fp32,fp16,bf16 > " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto ref = test::read_json(out);

  LlamaWeights m(model);
  SpectrumOptions opt;
  opt.precisions = {Precision::FP64, Precision::FP32, Precision::FP16, Precision::BF16};
  opt.progress = false;
  const auto layers = run_spectrum(m, opt, Comm::local());
  ASSERT_EQ(layers.size(), ref["layers"].size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& r = ref["layers"][i];
    ASSERT_EQ(layers[i].layer.name, r["name"].get<std::string>());
    EXPECT_EQ(layers[i].layer.category, r["category"].get<std::string>());
    for (size_t k = 0; k < opt.precisions.size(); ++k) {
      const auto& rp = r["per_precision"][k];
      const PrecisionSpectrum& p = layers[i].per_precision[k];
      const std::string where = layers[i].layer.name + " " + rp["precision"].get<std::string>();
      EXPECT_EQ(p.method, rp["method"].get<std::string>()) << where;
      EXPECT_EQ(p.overflow, rp["overflow"].get<int64_t>()) << where;
      EXPECT_EQ(p.m.n_eigs, rp["n_eigs"].get<int64_t>()) << where;
      EXPECT_EQ(p.m.k_used, rp["k_used"].get<int>()) << where;
      // Two eigensolvers agree to ~1e-13 relative on these spectra.
      const double tol = 1e-9;
      auto num = [&](const char* key) {
        return rp[key].is_null() ? std::nan("") : rp[key].get<double>();
      };
      expect_close(p.m.alpha_hill, num("alpha_hill"), tol, where + " alpha_hill");
      expect_close(p.m.lambda_max, num("lambda_max"), tol, where + " lambda_max");
      expect_close(p.m.spectral_norm, num("spectral_norm"), tol, where + " spectral_norm");
      expect_close(p.m.frobenius_norm, num("frobenius_norm"), tol, where + " frobenius_norm");
      expect_close(p.m.stable_rank, num("stable_rank"), tol, where + " stable_rank");
      expect_close(p.m.log_spectral_norm, num("log_spectral_norm"), tol, where + " log_spectral_norm");
      expect_close(p.m.log_norm, num("log_norm"), tol, where + " log_norm");
      expect_close(p.m.alpha_weighted, num("alpha_weighted"), tol, where + " alpha_weighted");
      expect_close(p.m.spectral_entropy, num("spectral_entropy"), tol, where + " spectral_entropy");
      expect_close(p.alpha_delta, num("alpha_delta"), 1e-7, where + " alpha_delta");
      EXPECT_EQ(p.m.pl_tail, rp["pl_tail"].get<int64_t>()) << where;
      expect_close(p.m.alpha_pl, num("alpha_pl"), tol, where + " alpha_pl");
      expect_close(p.m.pl_xmin, num("pl_xmin"), tol, where + " pl_xmin");
      expect_close(p.m.pl_D, num("pl_D"), 1e-7, where + " pl_D");
    }
  }
}

}  // namespace
}  // namespace qsweep
