// calib_windows.h — calibration data: n windows of seq_len tokens sliced from the tokenizer's own special
// tokens ([BOS] for Llama-2/3, none for SmolLM2/Qwen) + encode(text)
// at random offsets (windows may overlap, no BOS inserted), drawn with std::mt19937_64 seeded by
// --seed as offset = rng() % (n_tokens − seq_len), so every platform draws the same windows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

struct CalibWindows {
  int n = 0, seq_len = 0;
  std::vector<int32_t> tokens;    // [n, seq_len]
  std::vector<int64_t> offsets;   // where each window starts in prefix + encode(text)
  int64_t n_document_tokens = 0;  // the prefix included
};

CalibWindows sample_calib_windows(const std::vector<int32_t>& doc, const std::vector<int32_t>& prefix, int n, int seq_len,
                                  uint64_t seed, const std::string& source);

}  // namespace qsweep
