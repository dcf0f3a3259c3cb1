// spectrum.h — weight-spectrum analysis of every linear layer of a model across storage
// precisions, layer-parallel over MPI ranks.
//
// Layers (q, k, v, o, gate, up, down of each block, then lm_head) are filtered by an ECMAScript
// regex searched in the HF module name, assigned to ranks by a longest-job-first plan on their
// cost, and analysed one per thread (single-threaded BLAS/LAPACK inside): each rank reads only the
// weights it owns, and a layer's numbers do not depend on which rank or thread computed them.
// Results are gathered in model order.
#pragma once
#include <string>
#include <vector>

#include "dist/comm.h"
#include "model/llama_weights.h"
#include "stats/precision.h"
#include "stats/spectral_metrics.h"

namespace qsweep {

struct SpectrumLayer {
  std::string name;      // HF module name, e.g. model.layers.0.self_attn.q_proj
  std::string tensor;    // its weight tensor
  std::string category;  // attn_q ... mlp_down, lm_head
  int64_t out_features = 0, in_features = 0;
  double cost = 0;
};

// All 2-D linear weights in model order whose name matches `filter` (empty = all).
std::vector<SpectrumLayer> spectrum_layers(const LlamaWeights& model, const std::string& filter);

// Longest-job-first: owner rank of each layer (ties: model order, then lowest rank).
std::vector<int> lpt_assign(const std::vector<double>& cost, int ranks);

struct PrecisionSpectrum {
  Precision precision;
  std::string method;  // "hill" or "overflow"
  int64_t overflow = 0;
  SpectralMetrics m;   // NaN everywhere when method == overflow
  double alpha_delta = 0, alpha_delta_pct = 0;  // against the highest precision analysed
  std::vector<double> eigenvalues;              // λ > 0, descending (only with save_eigenvalues)
};

struct LayerSpectrum {
  SpectrumLayer layer;
  std::vector<PrecisionSpectrum> per_precision;  // in the order requested
  double seconds = 0;                            // timing (provenance, not a result)
  int rank = 0;                                  // who computed it (provenance)
};

struct SpectrumOptions {
  std::vector<Precision> precisions;
  std::string filter;
  double k_frac = 0.1;
  bool save_eigenvalues = false;
  bool progress = true;
};

std::vector<LayerSpectrum> run_spectrum(const LlamaWeights& model, const SpectrumOptions& opt,
                                        const Comm& comm);

}  // namespace qsweep
