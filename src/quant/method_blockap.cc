// method_blockap.cc — EfficientQAT's Block-AP as a method unit (`--method blockap`): per block,
// every linear becomes an asymmetric group fake-quantizer initialised from min–max (RTN's grid),
// or from another method's result (--init rtn|awq|gptq: that method's scales and zero points, the
// weights set to its dequantized weights, so training starts exactly at its block; awq first folds
// its scales into the block as AWQ does), and its scales, zero points and weights are trained (train/block_ap.h) so that the quantized
// block's output on the quantized model's inputs reproduces the full-precision block's output on
// full-precision inputs; the trained grid is what is stored. The pipeline hands the block stage
// the rank's windows (BlockData); training is data-parallel with per-window gradients summed in
// a fixed order, so any rank count gives the same files. --plan grids apply per linear.
// --budget-from: SGRA's per-block epochs, learning rates and patience (train/sgra.h), recorded as
// attributes of each /blocks/<i> (budget_s, budget_epochs, budget_lr_scale, budget_patience).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "io/h5_writer.h"
#include "quant/method.h"
#include "core/log.h"
#include "dist/task_pool.h"
#include "quant/quantize_model.h"
#include "stats/activation_stats.h"
#include "train/block_ap.h"
#include "train/block_grad.h"
#include "train/sgra.h"

namespace qsweep {

namespace po = boost::program_options;

const QuantMethodDef* rtn_method();
const QuantMethodDef* awq_method();
const QuantMethodDef* gptq_method();

namespace {

const Linear kAll[kNumLinear] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};

// --weight-lr / --quant-lr "auto": measured on kjv-llama-outliers with 64 windows x 2 epochs
// (README): at W2 g64 1e-3 beats 1e-4 and 3e-3; at W3 g128 1e-3 is worse than RTN, 3e-4 best.
constexpr double kAutoLr = -1;
double auto_lr(int bits) { return bits <= 2 ? 1e-3 : 3e-4; }

class BlockApMethod : public QuantMethodDef {
 public:
  const char* name() const override { return "blockap"; }
  void add_options(po::options_description& d, QuantizeOptions& opt) const override {
    BlockApOptions& b = opt.blockap;
    const BlockApOptions def;  // the defaults are BlockApOptions' own
    d.add_options()
        ("epochs", po::value(&b.epochs)->default_value(def.epochs), "blockap: passes over the training windows per block")
        ("train-batch", po::value(&b.train_batch)->default_value(def.train_batch), "blockap: windows per training step")
        ("weight-lr", po::value(&b.weight_lr)->default_value(kAutoLr, "auto"), "blockap: AdamW learning rate of the weights (cosine to a twentieth); auto: 1e-3 for blocks of <= 2 bits, 3e-4 above (measured for 64 windows x 2 epochs, README; EfficientQAT's 1e-5/2e-5 are for thousands of steps)")
        ("quant-lr", po::value(&b.quant_lr)->default_value(kAutoLr, "auto"), "blockap: AdamW learning rate of the scales and zero points; auto: as --weight-lr's (EfficientQAT: 1e-4)")
        ("val-windows", po::value(&b.val_windows)->default_value(def.val_windows), "blockap: the last N calibration windows are held out and scored after each epoch")
        ("patience", po::value(&b.patience)->default_value(def.patience), "blockap: stop a block's training after N epochs without a lower validation loss (0: never; needs --val-windows)")
        ("init", po::value(&b.init)->default_value(def.init), "blockap: the starting grid: minmax (EfficientQAT: each group's range), or rtn, awq, gptq (that method's grid and dequantized weights, so training starts at its result)")
        ("budget-from", po::value(&b.budget_from)->default_value(def.budget_from), "blockap: SGRA, per-block training budgets from a qsweep sensitivity output (folder or sensitivity.h5): epochs x (1 + S), lr x (1 + 0.5 (S - 0.5)), patience x (1 + S), S the block's mean layer score normalised to [0, 1] (README)")
        ("budget-score", po::value(&b.budget_score)->default_value(def.budget_score), "blockap: the score --budget-from uses: auto (fisher, else kl-probe, else output-error), fisher, kl-probe or output-error")
        ("budget-epochs-gain", po::value(&b.budget_epochs_gain)->default_value(def.budget_epochs_gain), "blockap: SGRA's epochs (and patience) factor 1 + gain x S")
        ("budget-lr-gain", po::value(&b.budget_lr_gain)->default_value(def.budget_lr_gain), "blockap: SGRA's learning-rate factor 1 + gain x (S - 0.5)");
  }
  void finish_options(QuantizeOptions& opt) const override {
    const BlockApOptions& b = opt.blockap;
    const bool mine = opt.method == this;
    const BlockApOptions def;
    const bool set = b.epochs != def.epochs || b.train_batch != def.train_batch || b.weight_lr != kAutoLr ||
                     b.quant_lr != kAutoLr || b.val_windows != def.val_windows || b.patience != def.patience ||
                     b.init != def.init || b.budget_from != def.budget_from || b.budget_score != def.budget_score ||
                     b.budget_epochs_gain != def.budget_epochs_gain || b.budget_lr_gain != def.budget_lr_gain;
    QS_CHECK(!set || mine, "--epochs, --train-batch, --weight-lr, --quant-lr, --val-windows, --patience, --init and --budget-* "
                           "apply to --method blockap only");
    if (!mine) return;
    QS_CHECK(b.init == "minmax" || b.init == "rtn" || b.init == "awq" || b.init == "gptq",
             "--init '" << b.init << "' is not known (expected minmax, rtn, awq or gptq)");
    QS_CHECK(b.init != "gptq" || !opt.gptq.act_order, "--init gptq: --gptq-act-order permutes the groups, which Block-AP's grid cannot hold");
    QS_CHECK(std::isfinite(b.budget_epochs_gain) && b.budget_epochs_gain >= 0 && std::isfinite(b.budget_lr_gain) &&
                 std::fabs(b.budget_lr_gain) < 2,
             "--budget-epochs-gain must be >= 0 and --budget-lr-gain within (-2, 2) (the lr factor must stay positive)");
    QS_CHECK(!b.budget_from.empty() || (b.budget_score == def.budget_score && b.budget_epochs_gain == def.budget_epochs_gain &&
                                        b.budget_lr_gain == def.budget_lr_gain),
             "--budget-score and the --budget-*-gain options need --budget-from");
    if (!b.budget_from.empty()) opt.blockap.block_sensitivity = block_sensitivity(b.budget_from, b.budget_score, opt.grid, 0, nullptr);
    QS_CHECK(b.epochs >= 1, "--epochs " << b.epochs << " must be at least 1");
    QS_CHECK(b.train_batch >= 1, "--train-batch " << b.train_batch << " must be at least 1");
    QS_CHECK((b.quant_lr >= 0 || b.quant_lr == kAutoLr) && std::isfinite(b.quant_lr), "--quant-lr " << b.quant_lr << " must be a finite number >= 0");
    QS_CHECK((b.weight_lr >= 0 || b.weight_lr == kAutoLr) && std::isfinite(b.weight_lr), "--weight-lr " << b.weight_lr << " must be a finite number >= 0");
    QS_CHECK(b.val_windows >= 0 && b.patience >= 0, "--val-windows and --patience must be >= 0");
    QS_CHECK(b.patience == 0 || b.val_windows > 0, "--patience needs --val-windows (early stopping watches the validation loss)");
    QS_CHECK(!opt.grid.sym, "--method blockap trains an asymmetric grid: --sym does not apply");
  }
  bool needs_block_data() const override { return true; }
  double layer_cost(double out, double in) const override { return out * in; }

  void transform_block(const BlockContext& c, BlockTransform& t) const override {
    QS_CHECK(c.data, "blockap: the pipeline did not provide the block's windows");
    BlockApOptions o = c.opt.blockap;
    o.seed = static_cast<uint64_t>(c.block);
    int bits = 16;  // the block's narrowest grid picks the automatic learning rates
    for (Linear l : kAll) bits = std::min(bits, c.opt.grid_for(linear_module_name(c.block, l)).bits);
    if (o.weight_lr == kAutoLr) o.weight_lr = auto_lr(bits);
    if (o.quant_lr == kAutoLr) o.quant_lr = auto_lr(bits);
    if (!o.block_sensitivity.empty()) {  // SGRA
      QS_CHECK(static_cast<int>(o.block_sensitivity.size()) == c.cfg.num_hidden_layers,
               "--budget-from " << o.budget_from << ": scores for " << o.block_sensitivity.size() << " blocks, the model has "
                                << c.cfg.num_hidden_layers << " (another model's sensitivity?)");
      const BlockBudget bb = block_budget(o.block_sensitivity[static_cast<size_t>(c.block)], o.epochs, o.patience,
                                          SgraRule{o.budget_epochs_gain, o.budget_lr_gain});
      o.epochs = bb.epochs, o.patience = bb.patience;
      o.weight_lr *= bb.lr_scale, o.quant_lr *= bb.lr_scale;
      t.attrs = {{"budget_s", bb.s}, {"budget_epochs", double(bb.epochs)}, {"budget_lr_scale", bb.lr_scale},
                 {"budget_patience", double(bb.patience)}};
      if (c.opt.progress && c.comm.rank() == 0)
        log_info("quantize: block %d: SGRA budget S = %.3f: %d epochs, lr x %.3f, patience %d", c.block, bb.s, bb.epochs,
                 bb.lr_scale, bb.patience);
    }
    t.attrs.push_back({"weight_lr", o.weight_lr});
    t.attrs.push_back({"quant_lr", o.quant_lr});
    const QuantMethodDef* from = o.init == "rtn" ? rtn_method() : o.init == "awq" ? awq_method() : o.init == "gptq" ? gptq_method() : nullptr;
    if (from == awq_method()) from->transform_block(c, t);  // AWQ's scales folded into the block (t: its scales, the originals)
    BlockParams<float> p = block_params_from<float>(c.weights);
    std::vector<GridSpec> grids;
    for (Linear l : kAll) {
      GridSpec g = c.opt.grid_for(linear_module_name(c.block, l));
      const int in = c.weights.in_features(l);
      g.group_size = g.group_size < 0 ? in : g.group_size;
      grids.push_back(g);
      if (!from) init_linear_quant_minmax(c.cfg, p, l, g.bits, g.group_size);
    }
    if (from) init_from_method(c, t, *from, grids, p);
    const BlockApData d{c.data->x_q, c.data->y_fp, c.data->first, c.data->count, c.data->n, c.data->seq_len};
    const BlockApCurve curve = train_block_ap(c.cfg, p, d, o, c.comm, c.opt.should_stop);
    t.train_loss = curve.train_loss;
    t.val_loss = curve.val_loss;
    t.epochs = curve.epochs_run;
    t.trained.resize(kNumLinear);
    for (Linear l : kAll) {
      const int li = static_cast<int>(l);
      if (t.original[li].empty())  // (awq: the weights before its scales, set by its block stage)
        t.original[li].assign(c.weights.linear(l), c.weights.linear(l) + static_cast<size_t>(c.weights.out_features(l)) * c.weights.in_features(l));
      t.trained[li] = to_quantized(c.cfg, p, l);
      const LinearRows lr = linear_rows(c.cfg, l);
      c.weights.set_linear(l, p.matrix(l).data() + static_cast<size_t>(lr.row0) * lr.in);  // the trained weights
    }
  }

  // --init rtn|awq|gptq: each linear quantized by that method (spread over ranks, broadcast), its
  // scales and zero points become the quantizer and its dequantized weights the trained weights,
  // so the fake-quantized block starts equal to the method's block.
  static void init_from_method(const BlockContext& c, const BlockTransform& t, const QuantMethodDef& m,
                               const std::vector<GridSpec>& grids, BlockParams<float>& p) {
    std::vector<double> cost;
    for (Linear l : kAll) cost.push_back(m.layer_cost(c.weights.out_features(l), c.weights.in_features(l)));
    const std::vector<Bytes> res = run_distributed(cost, [&](size_t k) {
      const Linear l = kAll[k];
      const int li = static_cast<int>(l);
      LinearResult r;
      static const std::vector<float> none;
      const std::vector<float>& cs = t.col_scale.size() == kNumLinear ? t.col_scale[static_cast<size_t>(li)] : none;
      m.quantize_layer(r, LayerWork{c.weights.linear(l), c.weights.out_features(l), c.weights.in_features(l),
                                    c.stats.input(input_of(l)), cs, grids[k], l != Linear::Q && l != Linear::K, c.opt});
      const int in = c.weights.in_features(l), ng = (in + grids[k].group_size - 1) / grids[k].group_size;
      QS_CHECK(r.q.g_idx.empty() && !r.q.grid.sym && r.q.scales.size() == static_cast<size_t>(c.weights.out_features(l)) * ng,
               "blockap --init " << m.name() << ": " << linear_module_name(c.block, l) << "'s grid is not an asymmetric group grid");
      Bytes o;
      o.put_vec(r.q.scales), o.put_vec(r.q.zeros), o.put_vec(r.q.dequantize());
      return o;
    }, c.comm);
    for (size_t k = 0; k < kNumLinear; ++k) {
      Bytes b = res[k];
      const Linear l = kAll[k];
      LinearQuant<float>& q = p.quant[static_cast<int>(l)];
      q.bits = grids[k].bits, q.group = grids[k].group_size;
      q.scales = b.get_vec<float>();
      const std::vector<int32_t> z = b.get_vec<int32_t>();
      q.zeros.assign(z.begin(), z.end());
      const std::vector<float> w = b.get_vec<float>();
      const LinearRows lr = linear_rows(c.cfg, l);
      QS_ASSERT(w.size() == static_cast<size_t>(lr.out) * lr.in && q.scales.size() == w.size() / q.group, "blockap --init sizes");
      std::copy(w.begin(), w.end(), p.matrix(l).begin() + static_cast<std::ptrdiff_t>(lr.row0) * lr.in);
    }
  }

  void quantize_layer(LinearResult& res, const LayerWork& w) const override {
    QS_CHECK(w.trained, "blockap: no trained grid for a layer (sensitivity and lm_head are not supported)");
    res.q = *w.trained;
  }

  void write_attrs(H5Writer& h, const QuantizeOptions& opt) const override {
    const BlockApOptions& b = opt.blockap;
    h.attr("/", "blockap_epochs", int64_t(b.epochs));
    h.attr("/", "blockap_train_batch", int64_t(b.train_batch));
    h.attr("/", "blockap_weight_lr", b.weight_lr);  // -1: auto (the value per block: /blocks/<i> weight_lr, quant_lr)
    h.attr("/", "blockap_quant_lr", b.quant_lr);
    h.attr("/", "blockap_val_windows", int64_t(b.val_windows));
    h.attr("/", "blockap_patience", int64_t(b.patience));
    h.attr("/", "blockap_init", b.init);
    if (!b.budget_from.empty()) {
      h.attr("/", "blockap_budget_from", b.budget_from);
      h.attr("/", "blockap_budget_score", b.budget_score);
      h.attr("/", "blockap_budget_epochs_gain", b.budget_epochs_gain);
      h.attr("/", "blockap_budget_lr_gain", b.budget_lr_gain);
    }
  }
};
}  // namespace

const QuantMethodDef* blockap_method() {
  static const BlockApMethod m;
  return &m;
}

}  // namespace qsweep
