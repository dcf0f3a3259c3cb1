// checkpoint.h — the tensors of a Hugging Face model directory: one model.safetensors, or shards
// listed by model.safetensors.index.json. Every shard's header is validated at open time (cheap:
// headers only); tensor data stays in the memory maps until a caller converts what it needs.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace qsweep {

class Checkpoint {
 public:
  explicit Checkpoint(const std::string& model_dir);

  const std::string& dir() const { return dir_; }
  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;
  // The file holding `name` (for error messages).
  const std::string& file_of(const std::string& name) const;
  // Converts a tensor to fp32 into dst (numel floats); throws naming the tensor and file when a
  // value is not finite.
  void read_f32(const std::string& name, float* dst) const;
  // Converts rows [row0, row0+nrows) of a 2-D tensor.
  void read_rows_f32(const std::string& name, int64_t row0, int64_t nrows, float* dst) const;
  std::vector<std::string> tensor_names() const;  // sorted

 private:
  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  const Entry& entry(const std::string& name) const;
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> tensors_;
};

}  // namespace qsweep
