// safetensors.cc — header parsing and validation of a .safetensors file.
#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qsweep {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  const size_t fsize = file_->size();
  QS_CHECK(fsize >= 8, path << ": truncated safetensors file: " << fsize
                            << " bytes, expected at least 8 (the header length)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | file_->data()[i];  // little-endian
  QS_CHECK(hlen <= fsize - 8, path << ": header length " << hlen << " runs past the end of the "
                                   << fsize << "-byte file (truncated or not a safetensors file)");
  const char* hbeg = reinterpret_cast<const char*>(file_->data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hbeg, hbeg + hlen);
  } catch (const nlohmann::json::exception& e) {
    QS_THROW(path << ": safetensors header is not valid JSON: " << e.what());
  }
  QS_CHECK(header.is_object(), path << ": safetensors header must be a JSON object");
  data_ = file_->data() + 8 + hlen;
  const uint64_t dsize = fsize - 8 - hlen;

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const auto& v = it.value();
    auto where = [&]() { return path + ": tensor '" + name + "'"; };
    QS_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") &&
                 v.contains("data_offsets"),
             where() << ": expected an object with dtype, shape and data_offsets");
    TensorInfo t;
    t.name = name;
    QS_CHECK(v["dtype"].is_string(), where() << ": dtype must be a string");
    const std::string dt = v["dtype"].get<std::string>();
    QS_CHECK(parse_dtype(dt, &t.dtype),
             where() << ": unknown dtype '" << dt << "' (expected F32, F16, BF16, ...)");
    QS_CHECK(v["shape"].is_array(), where() << ": shape must be an array");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      QS_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0,
               where() << ": shape entries must be non-negative integers");
      const uint64_t du = d.get<uint64_t>();
      QS_CHECK(du == 0 || numel <= std::numeric_limits<uint64_t>::max() / 16 / du,
               where() << ": shape " << v["shape"].dump() << " overflows");
      numel *= du;
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    QS_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                 off[1].is_number_unsigned(),
             where() << ": data_offsets must be [begin, end] with non-negative integers");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    QS_CHECK(t.begin <= t.end && t.end <= dsize,
             where() << ": data_offsets [" << t.begin << ", " << t.end
                     << "] out of bounds of the " << dsize << "-byte data section");
    const uint64_t want = numel * dtype_size(t.dtype);
    QS_CHECK(t.end - t.begin == want, where() << ": holds " << (t.end - t.begin)
                                              << " bytes but shape " << shape_str(t.shape)
                                              << " x " << dt << " needs " << want);
    tensors_.emplace(name, std::move(t));
  }

  // Overlap check: sort by begin, each tensor must end before the next begins.
  std::vector<const TensorInfo*> by_off;
  for (const auto& kv : tensors_) by_off.push_back(&kv.second);
  std::sort(by_off.begin(), by_off.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_off.size(); ++i) {
    const TensorInfo* a = by_off[i - 1];
    const TensorInfo* b = by_off[i];
    if (a->begin == a->end || b->begin == b->end) continue;  // empty tensors overlap nothing
    QS_CHECK(b->begin >= a->end, path << ": tensors '" << a->name << "' [" << a->begin << ", "
                                      << a->end << ") and '" << b->name << "' [" << b->begin
                                      << ", " << b->end << ") overlap in the data section");
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace qsweep
