// method_rtn.cc — round-to-nearest on the group grid (quant/grid.h) as a method unit: no options,
// no block stage, each layer quantized on its own weights.
#include "quant/method.h"
#include "quant/quantize_model.h"

namespace qsweep {

namespace {
class RtnMethod : public QuantMethodDef {
 public:
  const char* name() const override { return "rtn"; }
  void quantize_layer(LinearResult& res, const LayerWork& w) const override { res.q = quantize_rtn(w.M, w.out, w.in, w.grid); }
};
}  // namespace

const QuantMethodDef* rtn_method() {
  static const RtnMethod m;
  return &m;
}

}  // namespace qsweep
