// safetensors_writer.cc — header + data writer (header padded to 8 bytes, as the reference does).
#include "model/safetensors_writer.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qsweep {

std::vector<unsigned char> encode_f32(const std::vector<float>& v, DType dtype) {
  std::vector<unsigned char> out(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(out.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  QS_ASSERT(dtype_is_float_storage(dtype), "encode_f32 to " << dtype_name(dtype));
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  write_safetensors(path, tensors, [&](size_t i, std::vector<unsigned char>& b) { b = tensors[i].bytes; });
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::function<void(size_t, std::vector<unsigned char>&)>& fill) {
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}, {"written_by", "qsweep"}};
  uint64_t off = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
    sizes.push_back(numel * dtype_size(t.dtype));
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
                 {"data_offsets", {off, off + sizes.back()}}};
    off += sizes.back();
  }
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  QS_CHECK(out, path << ": cannot create file");
  uint64_t n = hs.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(hs.data(), static_cast<std::streamsize>(hs.size()));
  std::vector<unsigned char> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    fill(i, bytes);
    QS_ASSERT(bytes.size() == sizes[i], tensors[i].name << ": " << bytes.size() << " bytes for "
                                                        << sizes[i]);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  QS_CHECK(out.good(), path << ": write failed (disk full?)");
}

}  // namespace qsweep
