// spectrum_output.h — the files `qsweep spectrum` leaves (the contract users script against):
// results.h5 (metrics per precision and layer, optional eigenvalues, provenance),
// precision_alpha_hill_results.csv (one row per layer, model order, 17 significant digits) and
// precision_summary_statistics.csv (α_hill statistics per precision, as pandas computes them).
#pragma once
#include <string>
#include <vector>

#include "io/provenance.h"
#include "stats/spectrum.h"

namespace qsweep {

struct SpectrumRunInfo {
  std::string model, filter;
  double k_frac = 0.1;
  std::vector<Precision> precisions;
  bool save_eigenvalues = false;
  Provenance provenance;
};

void write_spectrum_h5(const std::string& path, const std::vector<LayerSpectrum>& layers,
                       const SpectrumRunInfo& info);
void write_spectrum_csv(const std::string& path, const std::vector<LayerSpectrum>& layers,
                        const std::vector<Precision>& precisions);
void write_spectrum_summary_csv(const std::string& path, const std::vector<LayerSpectrum>& layers,
                                const std::vector<Precision>& precisions);

// count, mean, std (n-1), min, median, max, q25, q75 of the finite values (pandas' describe()).
struct Summary {
  int64_t count = 0;
  double mean, std, min, median, max, q25, q75;
};
Summary summarize(std::vector<double> v);

}  // namespace qsweep
