// safetensors.h — one memory-mapped .safetensors file, validated before any tensor is read.
//
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {...}}, then the data section; offsets are
// relative to the data section. Every way a file can lie is checked at open time with an error
// naming the file and the tensor: truncated file, header past the end, header not JSON, unknown
// dtype, offsets out of bounds or overlapping, byte size != shape x dtype size.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace qsweep {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

std::string shape_str(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // maps and validates; throws qsweep::Error

  const std::string& path() const { return file_->path(); }
  // Tensors in header order is not meaningful; this map is sorted by name (deterministic).
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  // Raw bytes of a tensor inside the map (no copy).
  const unsigned char* data(const TensorInfo& t) const { return data_ + t.begin; }
  // Gives back the resident pages of bytes read from data() (MappedFile::release).
  void release(const void* p, size_t bytes) const { file_->release(p, bytes); }

 private:
  std::unique_ptr<MappedFile> file_;
  const unsigned char* data_ = nullptr;
  std::map<std::string, TensorInfo> tensors_;
};

}  // namespace qsweep
