// method_awq.cc — AWQ (activation-aware weight quantization) as a method unit: per block, a
// search of per-input-channel scales s = salience^α for each group of linears sharing an input
// (q/k/v, o when shapes allow, gate/up, down), scored exactly on the Gram of that input
// (quant/awq.h); the scales are folded into the previous layer (the norms, v for o, up for down)
// and the layers quantized by RTN on the scaled weights, optionally with AutoAWQ's clipping
// search. Salience: l2 (the study's standard), l1 (AutoAWQ) or Robust-PRAQ's importance for
// gate/up (stats/praq.h); --noise-std makes the search noise-robust in closed form.
#include <cmath>
#include <limits>

#include "core/error.h"
#include "dist/task_pool.h"
#include "io/h5_writer.h"
#include "quant/awq.h"
#include "quant/method.h"
#include "quant/quantize_model.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

const Linear kAll[kNumLinear] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};

class AwqMethod : public QuantMethodDef {
 public:
  const char* name() const override { return "awq"; }
  void add_options(po::options_description& d, QuantizeOptions& opt) const override {
    d.add_options()
        ("awq-grid", po::value(&opt.awq_grid)->default_value(20), "AWQ: number of α grid points")
        ("awq-salience", po::value(&opt.awq_salience)->default_value("l2"), "AWQ's activation salience per input channel: l2 (root mean x², the standard AWQ of the study, matching the squared-error objective), l1 (mean |x|, AutoAWQ's get_act_scale) or praq (gate/up: Robust-PRAQ's risk-aware post-activation importance, README; elsewhere l2)")
        ("n-noise-samples", po::value(&opt.noise_samples)->default_value(3), "--awq-salience praq with --noise-std: noise draws averaged in the importance")
        ("noise-std", po::value(&opt.noise_std)->default_value(0.0), "AWQ: noise-robust scale search — Gaussian input noise of this std relative to the input's RMS, in closed form (Σxxᵀ + n·σ²·RMS²·I in the search's error, mean x² + σ²·RMS² in the L2 salience); 0: off")
        ("awq-clip", po::bool_switch(&opt.awq_clip), "AWQ: clipping search on each group's weights (not q/k), as AutoAWQ's auto_clip");
  }
  void finish_options(QuantizeOptions& opt) const override {
    const bool mine = opt.method == this;
    QS_CHECK(opt.awq_salience == "l1" || opt.awq_salience == "l2" || opt.awq_salience == "praq",
             "--awq-salience '" << opt.awq_salience << "' is not known (expected l1, l2 or praq)");
    opt.awq_l2 = opt.awq_salience != "l1";
    opt.awq_praq = opt.awq_salience == "praq";
    QS_CHECK(!opt.awq_praq || mine, "--awq-salience praq applies to --method awq only");
    QS_CHECK(opt.noise_samples >= 1, "--n-noise-samples " << opt.noise_samples << " must be at least 1");
    QS_CHECK(!opt.awq_clip || mine, "--awq-clip applies to --method awq only");
    QS_CHECK(opt.noise_std >= 0 && std::isfinite(opt.noise_std), "--noise-std " << opt.noise_std << " must be a finite number >= 0");
    QS_CHECK(opt.noise_std == 0 || mine, "--noise-std applies to --method awq only (its scale search)");
    QS_CHECK(opt.noise_std == 0 || opt.awq_l2, "--noise-std needs --awq-salience l2 (mean |x| has no closed form under noise)");
  }
  bool transforms_block() const override { return true; }
  void transform_block(const BlockContext& c, BlockTransform& t) const override {
    struct Group { BlockInput input; std::vector<Linear> linears; };
    std::vector<Group> groups = {{BlockInput::Qkv, {Linear::Q, Linear::K, Linear::V}},
                                 {BlockInput::GateUp, {Linear::Gate, Linear::Up}},
                                 {BlockInput::Down, {Linear::Down}}};
    if (c.cfg.kv_dim() == c.cfg.q_dim()) groups.insert(groups.begin() + 1, Group{BlockInput::O, {Linear::O}});
    std::vector<double> cost;
    for (const auto& g : groups) {
      double flops = 0;
      for (Linear l : g.linears) flops += double(c.weights.out_features(l)) * c.weights.in_features(l) * c.weights.in_features(l);
      cost.push_back(flops * c.opt.awq_grid);
    }
    auto searches = run_distributed(cost, [&](size_t k) {
      const Group& g = groups[k];
      const InputStats& st = c.stats.input(g.input);
      // Noise of std σ·RMS per input element adds σ²RMS² to every mean x² and tokens·σ²RMS² to
      // the Gram's diagonal (the noise is independent of x and across channels).
      double var = 0;
      if (c.opt.noise_std > 0) {
        double ss = 0;
        for (double v : st.sum_sq) ss += v;
        var = c.opt.noise_std * c.opt.noise_std * ss / (st.tokens * st.channels);
      }
      std::vector<double> sal(st.channels);
      for (int ch = 0; ch < st.channels; ++ch)
        sal[ch] = c.opt.awq_l2 ? std::sqrt(st.sum_sq[ch] / st.tokens + var) : st.sum_abs[ch] / st.tokens;
      if (c.opt.awq_praq && g.input == BlockInput::GateUp) {
        QS_ASSERT(c.stats.praq_importance.size() == sal.size(), "PRAQ importance of block " << c.block);
        sal = c.stats.praq_importance;
      }
      std::vector<double> noisy_gram;
      if (var > 0) {
        noisy_gram = st.gram;
        for (int ch = 0; ch < st.channels; ++ch) noisy_gram[static_cast<size_t>(ch) * st.channels + ch] += st.tokens * var;
      }
      const std::vector<double>& gram = var > 0 ? noisy_gram : st.gram;
      std::vector<const float*> ws;
      std::vector<int> outs;
      std::vector<GridSpec> grids;
      for (Linear l : g.linears) {
        ws.push_back(c.weights.linear(l));
        outs.push_back(c.weights.out_features(l));
        grids.push_back(c.opt.grid_for(linear_module_name(c.block, l)));
      }
      const AwqSearch s = awq_search(ws, outs, st.channels, gram, sal, grids, c.opt.awq_grid);
      Bytes o;
      o.put(s.alpha);
      o.put_vec(s.scales);
      return o;
    }, c.comm);
    for (size_t k = 0; k < groups.size(); ++k) {
      const double alpha = searches[k].template get<double>();
      const std::vector<float> s = searches[k].template get_vec<float>();
      bool finite = std::isfinite(alpha);
      for (float v : s) finite &= std::isfinite(v);
      QS_CHECK(finite, "quantize: non-finite AWQ scales in block " << c.block << ", layer "
                                                                  << linear_module_name(c.block, groups[k].linears[0])
                                                                  << " (α " << alpha << ")");
      for (Linear l : groups[k].linears) {
        t.col_scale[static_cast<int>(l)] = s;
        t.alpha[static_cast<int>(l)] = alpha;
      }
      if (groups[k].input == BlockInput::Down) t.row_scale[static_cast<int>(Linear::Up)] = s;
      if (groups[k].input == BlockInput::O) t.row_scale[static_cast<int>(Linear::V)] = s;
    }
    // All searches ran on the unscaled weights (as AutoAWQ does); now scale and fold.
    for (Linear l : kAll) {
      const float* p = c.weights.linear(l);
      t.original[static_cast<int>(l)].assign(p, p + static_cast<size_t>(c.weights.out_features(l)) * c.weights.in_features(l));
    }
    for (size_t k = 0; k < groups.size(); ++k)
      awq_apply_scales(c.weights, groups[k].input, t.col_scale[static_cast<int>(groups[k].linears[0])]);
  }
  void quantize_layer(LinearResult& res, const LayerWork& w) const override {
    if (!w.opt.awq_clip || !w.clip_allowed) {
      res.q = quantize_rtn(w.M, w.out, w.in, w.grid);
      return;
    }
    // Clip on the scaled weights against the scaled inputs' Gram diag(1/s) G diag(1/s); q/k are
    // skipped, as AutoAWQ does (their error is reshaped by the softmax).
    std::vector<double> gs = w.st.gram;
    const std::vector<float>& cs = w.col_scale;
    if (!cs.empty())
      for (int a = 0; a < w.in; ++a)
        for (int b = 0; b < w.in; ++b) gs[static_cast<size_t>(a) * w.in + b] /= static_cast<double>(cs[a]) * cs[b];
    std::vector<float> clipped(w.M, w.M + static_cast<size_t>(w.out) * w.in);
    res.awq_clip_shrink = awq_clip(clipped.data(), w.out, w.in, gs, w.grid);
    res.q = quantize_rtn(clipped.data(), w.out, w.in, w.grid);
  }
  void write_attrs(H5Writer& h, const QuantizeOptions& opt) const override {
    h.attr("/", "awq_grid", int64_t(opt.awq_grid));
    h.attr("/", "awq_salience", opt.awq_salience);
    h.attr("/", "awq_clip", int64_t(opt.awq_clip));
    h.attr("/", "noise_std", opt.noise_std);
  }
};

}  // namespace

const QuantMethodDef* awq_method() {
  static const AwqMethod m;
  return &m;
}

}  // namespace qsweep
