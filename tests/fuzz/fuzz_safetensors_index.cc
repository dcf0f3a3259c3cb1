// fuzz_safetensors_index.cc — libFuzzer target: model.safetensors.index.json of a sharded
// checkpoint. The input is the index; the folder holds two small valid shards (written once per
// process), so the fuzzer explores weight_map: names missing from a shard, shards that do not
// exist, paths, types. Every tensor the index accepts is then converted to fp32.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "model/checkpoint.h"

namespace {

// A safetensors file from a JSON header and a data section.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xFF);
  return out + header + data;
}

void write_shards() {
  using qsweep::fuzz::write_scratch;
  // Shard 1: a F32 [2, 2], b BF16 [3]; shard 2: c F16 [2], d F32 [0, 3], e I8 [4].
  const float a[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  write_scratch("model-00001-of-00002.safetensors",
                safetensors(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                            R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},)"
                            R"("__metadata__":{"format":"pt"}})",
                            std::string(reinterpret_cast<const char*>(a), 16) + std::string("\x80\x3f\x00\x40\x80\xbf", 6)));
  write_scratch("model-00002-of-00002.safetensors",
                safetensors(R"({"c":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                            R"("d":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                            R"("e":{"dtype":"I8","shape":[4],"data_offsets":[4,8]}})",
                            std::string("\x00\x3c\x00\xc0\x01\x02\x03\x04", 8)));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_shards();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  fuzz::write_scratch("model.safetensors.index.json", std::string_view(reinterpret_cast<const char*>(data), size));
  std::vector<float> buf;
  fuzz::expect_only_qsweep_errors([&] {
    const Checkpoint ck(fuzz::scratch_dir());
    for (const std::string& name : ck.tensor_names()) {
      const TensorInfo* t = ck.find(name);
      if (!t) fuzz::finding("tensor_names() lists '" + name + "' but find() does not know it");
      (void)ck.file_of(name);
      if (!dtype_is_float_storage(t->dtype)) continue;
      buf.assign(static_cast<size_t>(t->numel()) + 1, 0.0f);
      ck.read_f32(name, buf.data());
    }
  });
  return 0;
}
