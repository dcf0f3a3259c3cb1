// sensitivity_file.cc — writing and reading sensitivity.h5 (see sensitivity_file.h).
#include "io/sensitivity_file.h"

#include <cmath>

#include "core/error.h"
#include "io/h5_reader.h"
#include "io/h5_writer.h"
#include "io/provenance.h"
#include "quant/palette.h"

namespace qsweep {

void write_sensitivity_file(const std::string& path, const SensitivityData& d, const Provenance& prov) {
  H5Writer w(path);
  w.attr("/", "format", std::string("qsweep-sensitivity"));
  w.attr("/", "format_version", int64_t(1));
  w.attr("/", "model", d.model);
  w.attr("/", "calib", d.calib);
  w.attr("/", "method", d.method);
  w.attr("/", "n_calib", int64_t(d.n_calib));
  w.attr("/", "seq_len", int64_t(d.seq_len));
  w.attr("/", "seed", static_cast<int64_t>(d.seed));
  w.attr("/", "palette", palette_string(d.palette));
  w.attr("/", "scores", d.score);
  w.attr("/", "quantized_params", d.quantized_params);
  w.attr("/", "full_bits", d.full_bits);
  w.attr("/", "other_bytes", d.other_bytes);
  std::vector<int32_t> bits, groups;
  for (const GridSpec& g : d.palette) {
    bits.push_back(g.bits);
    groups.push_back(g.group_size);
  }
  w.group("/palette");
  w.dataset("/palette/bits", bits);
  w.dataset("/palette/group_size", groups);
  w.group("/layers");
  w.dataset("/layers/name", d.layers);
  w.dataset("/layers/out_features", std::vector<int32_t>(d.out_features.begin(), d.out_features.end()));
  w.dataset("/layers/in_features", std::vector<int32_t>(d.in_features.begin(), d.in_features.end()));
  w.group("/scores");
  w.dataset("/scores/output_error", d.output_error);
  if (!d.kl_probe.empty()) {
    w.dataset("/scores/kl_probe", d.kl_probe);
    w.attr("/scores/kl_probe", "probe_windows", int64_t(d.probe_windows));
    w.attr("/scores/kl_probe", "probe_ctx", int64_t(d.probe_ctx));
    w.attr("/scores/kl_probe", "probe_source", d.probe_source);
  }
  if (!d.alpha.empty()) {
    w.dataset("/scores/alpha", d.alpha);
    w.attr("/scores/alpha", "k_frac", d.alpha_k_frac);
    w.attr("/scores/alpha", "layout", std::string("[layer]: one value per layer, every candidate"));
  }
  if (!d.fisher.empty()) {
    w.dataset("/scores/fisher", d.fisher);
    w.attr("/scores/fisher", "windows", int64_t(d.fisher_windows));
    w.attr("/scores/fisher", "ctx", int64_t(d.fisher_ctx));
    w.attr("/scores/fisher", "loss", d.fisher_loss);
  }
  prov.write(w);
  w.commit();
}

const std::vector<double>& SensitivityData::scores(const std::string& name) const {
  if (name == "output-error") return output_error;
  QS_CHECK(name != "alpha", "--score alpha: Alpha-Hill is one value per layer, the same for every candidate, so it cannot choose "
                            "between candidates; allocate by kl-probe or output-error (alpha is for comparison)");
  if (name == "fisher") {
    QS_CHECK(!fisher.empty(), "--score fisher: the sensitivity file has no fisher scores (run qsweep sensitivity --score output-error,fisher)");
    return fisher;
  }
  QS_CHECK(name == "kl-probe", "--score '" << name << "': expected output-error, kl-probe or fisher");
  QS_CHECK(!kl_probe.empty(), "--score kl-probe: the sensitivity file has no kl-probe scores (run qsweep sensitivity --score output-error,kl-probe)");
  return kl_probe;
}

SensitivityData read_sensitivity_file(const std::string& path) {
  H5Reader r(path);
  QS_CHECK(r.has_attr("/", "format") && r.attr_string("/", "format") == "qsweep-sensitivity",
           path << ": not a qsweep sensitivity.h5 (root attribute format is not 'qsweep-sensitivity')");
  SensitivityData d;
  d.model = r.attr_string("/", "model");
  d.calib = r.attr_string("/", "calib");
  d.method = r.attr_string("/", "method");
  d.n_calib = static_cast<int>(r.attr_int("/", "n_calib"));
  d.seq_len = static_cast<int>(r.attr_int("/", "seq_len"));
  d.seed = static_cast<uint64_t>(r.attr_int("/", "seed"));
  d.score = r.attr_string("/", "scores");
  d.quantized_params = r.attr_double("/", "quantized_params");
  d.full_bits = r.attr_double("/", "full_bits");
  d.other_bytes = r.attr_double("/", "other_bytes");
  d.palette = parse_palette(r.attr_string("/", "palette"));
  const std::vector<int32_t> bits = r.read_int32("/palette/bits"), groups = r.read_int32("/palette/group_size");
  QS_CHECK(bits.size() == d.palette.size() && groups.size() == d.palette.size(), path << ": /palette does not match the palette attribute");
  d.layers = r.read_strings("/layers/name");
  const std::vector<int32_t> out = r.read_int32("/layers/out_features"), in = r.read_int32("/layers/in_features");
  d.out_features.assign(out.begin(), out.end());
  d.in_features.assign(in.begin(), in.end());
  d.output_error = r.read_double("/scores/output_error");
  QS_CHECK(!d.layers.empty() && d.out_features.size() == d.layers.size() && d.in_features.size() == d.layers.size(),
           path << ": /layers is empty or its datasets differ in length");
  QS_CHECK(d.output_error.size() == d.layers.size() * d.palette.size(),
           path << ": /scores/output_error has " << d.output_error.size() << " entries, expected " << d.layers.size()
                << " layers x " << d.palette.size() << " candidates");
  if (r.exists("/scores/kl_probe")) {
    d.kl_probe = r.read_double("/scores/kl_probe");
    QS_CHECK(d.kl_probe.size() == d.output_error.size(), path << ": /scores/kl_probe and /scores/output_error differ in length");
    d.probe_windows = static_cast<int>(r.attr_int("/scores/kl_probe", "probe_windows"));
    d.probe_ctx = static_cast<int>(r.attr_int("/scores/kl_probe", "probe_ctx"));
    d.probe_source = r.attr_string("/scores/kl_probe", "probe_source");
    for (size_t i = 0; i < d.kl_probe.size(); ++i)
      QS_CHECK(std::isfinite(d.kl_probe[i]), path << ": /scores/kl_probe[" << i << "] is not finite");
  }
  if (r.exists("/scores/fisher")) {
    d.fisher = r.read_double("/scores/fisher");
    QS_CHECK(d.fisher.size() == d.output_error.size(), path << ": /scores/fisher and /scores/output_error differ in length");
    d.fisher_windows = static_cast<int>(r.attr_int("/scores/fisher", "windows"));
    d.fisher_ctx = static_cast<int>(r.attr_int("/scores/fisher", "ctx"));
    d.fisher_loss = r.attr_double("/scores/fisher", "loss");
    for (size_t i = 0; i < d.fisher.size(); ++i)
      QS_CHECK(std::isfinite(d.fisher[i]) && d.fisher[i] >= 0, path << ": /scores/fisher[" << i << "] = " << d.fisher[i] << " (expected finite, >= 0)");
  }
  if (r.exists("/scores/alpha")) {
    d.alpha = r.read_double("/scores/alpha");
    QS_CHECK(d.alpha.size() == d.layers.size(), path << ": /scores/alpha has " << d.alpha.size() << " entries, expected one per layer ("
                                                      << d.layers.size() << ")");
    d.alpha_k_frac = r.attr_double("/scores/alpha", "k_frac");
  }
  for (size_t i = 0; i < d.output_error.size(); ++i)
    QS_CHECK(std::isfinite(d.output_error[i]) && d.output_error[i] >= 0,
             path << ": /scores/output_error[" << i << "] = " << d.output_error[i] << " (expected finite, >= 0)");
  return d;
}

}  // namespace qsweep
