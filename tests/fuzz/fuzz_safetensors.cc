// fuzz_safetensors.cc — libFuzzer target: one .safetensors file (8-byte header length, JSON
// header, data section) opened as a model folder's model.safetensors through Checkpoint, then
// every float tensor of a modest size converted to fp32, as the weight loader does. The header
// validation must turn every lie (lengths, offsets, shapes, dtypes) into a qsweep::Error before
// a byte of tensor data is read.
#include <cstdint>
#include <vector>

#include "fuzz_util.h"
#include "model/checkpoint.h"

namespace {
constexpr int64_t kMaxConvert = int64_t(1) << 16;  // floats converted per tensor
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  fuzz::write_scratch("model.safetensors", std::string_view(reinterpret_cast<const char*>(data), size));
  std::vector<float> buf;
  fuzz::expect_only_qsweep_errors([&] {
    const Checkpoint ck(fuzz::scratch_dir());
    for (const std::string& name : ck.tensor_names()) {
      const TensorInfo* t = ck.find(name);
      if (!t) fuzz::finding("tensor_names() lists '" + name + "' but find() does not know it");
      (void)ck.file_of(name);
      if (!dtype_is_float_storage(t->dtype) || t->numel() > kMaxConvert) continue;
      buf.assign(static_cast<size_t>(t->numel()) + 1, 0.0f);
      try {
        ck.read_f32(name, buf.data());
      } catch (const Error&) {  // a non-finite value: expected, go on with the next tensor
      }
    }
  });
  return 0;
}
