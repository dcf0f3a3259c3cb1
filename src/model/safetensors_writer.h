// safetensors_writer.h — writes .safetensors files (and sharded checkpoints with an index), for
// `qsweep make-model` (synthetic checkpoints with real shapes, for benchmarks and tests) and for
// tests that need deliberately broken files.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace qsweep {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;  // numel * dtype_size
};

// Encodes fp32 values in dtype (F32, F16 or BF16; round to nearest even).
std::vector<unsigned char> encode_f32(const std::vector<float>& v, DType dtype);

// Writes tensors (in the given order) to path.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

// Streaming form: `tensors` give names, dtypes and shapes (bytes ignored); fill(i, bytes) produces
// tensor i's data just before it is written, so a multi-GB checkpoint never sits in memory.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::function<void(size_t, std::vector<unsigned char>&)>& fill);

}  // namespace qsweep
