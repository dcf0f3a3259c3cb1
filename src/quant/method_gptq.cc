// method_gptq.cc — GPTQ as a method unit: each layer quantized column by column against the
// Hessian Σxxᵀ of its input with lazy block updates (quant/gptq.h); damping, act-order and the
// block size are its options.
#include "core/error.h"
#include "io/h5_writer.h"
#include "quant/gptq.h"
#include "quant/method.h"
#include "quant/quantize_model.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
class GptqMethod : public QuantMethodDef {
 public:
  const char* name() const override { return "gptq"; }
  void add_options(po::options_description& d, QuantizeOptions& opt) const override {
    d.add_options()
        ("gptq-damp", po::value(&opt.gptq.damp)->default_value(0.01), "GPTQ: damping as a fraction of mean(diag H)")
        ("gptq-act-order", po::bool_switch(&opt.gptq.act_order), "GPTQ: columns by decreasing H_ii, static groups")
        ("gptq-block-size", po::value(&opt.gptq.block_size)->default_value(128), "GPTQ: columns per lazy-update block");
  }
  void finish_options(QuantizeOptions& opt) const override {
    QS_CHECK(opt.gptq.damp > 0, "--gptq-damp must be positive");
    QS_CHECK(opt.gptq.block_size >= 1, "--gptq-block-size " << opt.gptq.block_size << " must be at least 1");
  }
  double layer_cost(double out, double in) const override { return out * in * in; }
  void quantize_layer(LinearResult& res, const LayerWork& w) const override {
    GptqResult gr = gptq_quantize(w.M, w.out, w.in, w.st.gram, w.st.tokens, w.grid, w.opt.gptq);
    res.q = std::move(gr.q);
    res.gptq_damp = gr.damp_used;
    res.dead_columns = gr.dead_columns;
  }
  void write_attrs(H5Writer& h, const QuantizeOptions& opt) const override {
    h.attr("/", "gptq_damp", opt.gptq.damp);
    h.attr("/", "gptq_act_order", int64_t(opt.gptq.act_order));
    h.attr("/", "gptq_block_size", int64_t(opt.gptq.block_size));
  }
};
}  // namespace

const QuantMethodDef* gptq_method() {
  static const GptqMethod m;
  return &m;
}

}  // namespace qsweep
