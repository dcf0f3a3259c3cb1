// method_blockap.cc — EfficientQAT's Block-AP as a method unit (`--method blockap`): per block,
// every linear becomes an asymmetric group fake-quantizer initialised from min–max (RTN's grid),
// and its scales, zero points and weights are trained (train/block_ap.h) so that the quantized
// block's output on the quantized model's inputs reproduces the full-precision block's output on
// full-precision inputs; the trained grid is what is stored. The pipeline hands the block stage
// the rank's windows (BlockData); training is data-parallel with per-window gradients summed in
// a fixed order, so any rank count gives the same files. --plan grids apply per linear.
#include <cmath>
#include <limits>

#include "core/error.h"
#include "io/h5_writer.h"
#include "quant/method.h"
#include "quant/quantize_model.h"
#include "train/block_ap.h"
#include "train/block_grad.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

const Linear kAll[kNumLinear] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};

class BlockApMethod : public QuantMethodDef {
 public:
  const char* name() const override { return "blockap"; }
  void add_options(po::options_description& d, QuantizeOptions& opt) const override {
    BlockApOptions& b = opt.blockap;
    const BlockApOptions def;  // the defaults are BlockApOptions' own
    d.add_options()
        ("epochs", po::value(&b.epochs)->default_value(def.epochs), "blockap: passes over the training windows per block")
        ("train-batch", po::value(&b.train_batch)->default_value(def.train_batch), "blockap: windows per training step")
        ("weight-lr", po::value(&b.weight_lr)->default_value(def.weight_lr), "blockap: AdamW learning rate of the weights (cosine to a twentieth); EfficientQAT's 1e-5/2e-5 are for thousands of steps, 64 windows x 2 epochs are 64 (README)")
        ("quant-lr", po::value(&b.quant_lr)->default_value(def.quant_lr), "blockap: AdamW learning rate of the scales and zero points (EfficientQAT: 1e-4)")
        ("val-windows", po::value(&b.val_windows)->default_value(def.val_windows), "blockap: the last N calibration windows are held out and scored after each epoch")
        ("patience", po::value(&b.patience)->default_value(def.patience), "blockap: stop a block's training after N epochs without a lower validation loss (0: never; needs --val-windows)");
  }
  void finish_options(QuantizeOptions& opt) const override {
    const BlockApOptions& b = opt.blockap;
    const bool mine = opt.method == this;
    const BlockApOptions def;
    const bool set = b.epochs != def.epochs || b.train_batch != def.train_batch || b.weight_lr != def.weight_lr ||
                     b.quant_lr != def.quant_lr || b.val_windows != def.val_windows || b.patience != def.patience;
    QS_CHECK(!set || mine, "--epochs, --train-batch, --weight-lr, --quant-lr, --val-windows and --patience apply to --method blockap only");
    if (!mine) return;
    QS_CHECK(b.epochs >= 1, "--epochs " << b.epochs << " must be at least 1");
    QS_CHECK(b.train_batch >= 1, "--train-batch " << b.train_batch << " must be at least 1");
    QS_CHECK(b.quant_lr >= 0 && std::isfinite(b.quant_lr), "--quant-lr " << b.quant_lr << " must be a finite number >= 0");
    QS_CHECK(b.weight_lr >= 0 && std::isfinite(b.weight_lr), "--weight-lr " << b.weight_lr << " must be a finite number >= 0");
    QS_CHECK(b.val_windows >= 0 && b.patience >= 0, "--val-windows and --patience must be >= 0");
    QS_CHECK(b.patience == 0 || b.val_windows > 0, "--patience needs --val-windows (early stopping watches the validation loss)");
    QS_CHECK(!opt.grid.sym, "--method blockap trains an asymmetric grid: --sym does not apply");
  }
  bool needs_block_data() const override { return true; }
  double layer_cost(double out, double in) const override { return out * in; }

  void transform_block(const BlockContext& c, BlockTransform& t) const override {
    QS_CHECK(c.data, "blockap: the pipeline did not provide the block's windows");
    BlockParams<float> p = block_params_from<float>(c.weights);
    for (Linear l : kAll) {
      const GridSpec g = c.opt.grid_for(linear_module_name(c.block, l));
      const int in = c.weights.in_features(l);
      const int group = g.group_size < 0 ? in : g.group_size;
      QS_CHECK(in % group == 0, "blockap: group size " << group << " does not divide " << linear_module_name(c.block, l)
                                                       << "'s " << in << " inputs");
      init_linear_quant_minmax(c.cfg, p, l, g.bits, group);
    }
    BlockApOptions o = c.opt.blockap;
    o.seed = static_cast<uint64_t>(c.block);
    const BlockApData d{c.data->x_q, c.data->y_fp, c.data->first, c.data->count, c.data->n, c.data->seq_len};
    const BlockApCurve curve = train_block_ap(c.cfg, p, d, o, c.comm, c.opt.should_stop);
    t.train_loss = curve.train_loss;
    t.val_loss = curve.val_loss;
    t.epochs = curve.epochs_run;
    t.trained.resize(kNumLinear);
    for (Linear l : kAll) {
      const int li = static_cast<int>(l);
      t.original[li].assign(c.weights.linear(l), c.weights.linear(l) + static_cast<size_t>(c.weights.out_features(l)) * c.weights.in_features(l));
      t.trained[li] = to_quantized(c.cfg, p, l);
      const LinearRows lr = linear_rows(c.cfg, l);
      c.weights.set_linear(l, p.matrix(l).data() + static_cast<size_t>(lr.row0) * lr.in);  // the trained weights
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
    h.attr("/", "blockap_weight_lr", b.weight_lr);
    h.attr("/", "blockap_quant_lr", b.quant_lr);
    h.attr("/", "blockap_val_windows", int64_t(b.val_windows));
    h.attr("/", "blockap_patience", int64_t(b.patience));
  }
};
}  // namespace

const QuantMethodDef* blockap_method() {
  static const BlockApMethod m;
  return &m;
}

}  // namespace qsweep
