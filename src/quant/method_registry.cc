// method_registry.cc — the list of quantization methods (quant/method.h). Their option fragments
// appear in `qsweep quantize --help` and in job files in this order.
#include <string>

#include "core/error.h"
#include "quant/method.h"

namespace qsweep {

const QuantMethodDef* rtn_method();
const QuantMethodDef* awq_method();
const QuantMethodDef* gptq_method();
const QuantMethodDef* blockap_method();

const std::vector<const QuantMethodDef*>& quant_methods() {
  static const std::vector<const QuantMethodDef*> all = {rtn_method(), awq_method(), gptq_method(), blockap_method()};
  return all;
}

const QuantMethodDef* find_quant_method(const std::string& name) {
  std::string names;
  for (const QuantMethodDef* m : quant_methods()) {
    if (name == m->name()) return m;
    names += (names.empty() ? "" : ", ") + std::string(m->name());
  }
  QS_THROW("--method '" << name << "' is not known (expected " << names << ")");
}

}  // namespace qsweep
