// precision.h — the storage precisions a weight-spectrum analysis compares (fp64, fp32, fp16,
// bf16) and rounding a layer's weights to one of them: round-to-nearest-even, counting values
// that overflow to infinity (fp16 overflows above 65504; bf16 only near fp32's maximum).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

enum class Precision { FP64 = 0, FP32, FP16, BF16 };
const char* precision_name(Precision p);
// Parses a comma-separated list ("fp64,fp32,fp16,bf16"); throws naming the bad entry.
std::vector<Precision> parse_precisions(const std::string& list);
// Rank of how much a precision keeps: fp64 3, fp32 2, fp16 1, bf16 0 (fp16 has the longer mantissa).
int precision_rank(Precision p);

// Rounds values (given as float, exactly what the checkpoint stores) to `p` in place and
// returns the number of finite values that became +-inf.
int64_t round_to_precision(float* w, int64_t n, Precision p);

}  // namespace qsweep
