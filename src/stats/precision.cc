// precision.cc — precision names and rounding.
#include "stats/precision.h"

#include <cmath>
#include <sstream>

#include "core/dtype.h"
#include "core/error.h"

namespace qsweep {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP64: return "fp64";
    case Precision::FP32: return "fp32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

int precision_rank(Precision p) {
  switch (p) {
    case Precision::FP64: return 3;
    case Precision::FP32: return 2;
    case Precision::FP16: return 1;
    case Precision::BF16: return 0;
  }
  return -1;
}

std::vector<Precision> parse_precisions(const std::string& list) {
  std::vector<Precision> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    Precision p;
    if (item == "fp64") p = Precision::FP64;
    else if (item == "fp32") p = Precision::FP32;
    else if (item == "fp16") p = Precision::FP16;
    else if (item == "bf16") p = Precision::BF16;
    else QS_THROW("--precisions: unknown precision '" << item << "' (expected fp64, fp32, fp16, bf16)");
    for (Precision q : out)
      QS_CHECK(q != p, "--precisions: '" << item << "' is listed twice");
    out.push_back(p);
  }
  QS_CHECK(!out.empty(), "--precisions: empty list (expected e.g. fp64,fp32,fp16,bf16)");
  return out;
}

int64_t round_to_precision(float* w, int64_t n, Precision p) {
  // Checkpoint values are at most fp32-precise, so fp64 and fp32 leave them unchanged and
  // float -> half/bfloat16 rounds exactly once.
  if (p == Precision::FP64 || p == Precision::FP32) return 0;
  int64_t overflow = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = w[i];
    const float r = p == Precision::FP16 ? f16_to_f32(f32_to_f16(v)) : bf16_to_f32(f32_to_bf16(v));
    if (std::isinf(r) && std::isfinite(v)) ++overflow;
    w[i] = r;
  }
  return overflow;
}

}  // namespace qsweep
