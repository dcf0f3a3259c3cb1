// calib_windows.cc — seeded window sampling.
#include "eval/calib_windows.h"

#include <random>

#include "core/error.h"

namespace qsweep {

CalibWindows sample_calib_windows(const std::vector<int32_t>& doc, const std::vector<int32_t>& prefix, int n, int seq_len,
                                  uint64_t seed, const std::string& source) {
  QS_CHECK(n >= 1, "--n-calib " << n << " must be at least 1");
  QS_CHECK(seq_len >= 2, "--seq-len " << seq_len << " must be at least 2");
  std::vector<int32_t> ids;
  ids.reserve(doc.size() + prefix.size());
  ids.insert(ids.end(), prefix.begin(), prefix.end());
  ids.insert(ids.end(), doc.begin(), doc.end());
  const int64_t N = static_cast<int64_t>(ids.size());
  QS_CHECK(N >= seq_len + 1, source << ": has " << N << " tokens (special tokens included), fewer than --seq-len + 1 = "
                                    << seq_len + 1 << " needed to draw calibration windows");
  CalibWindows w;
  w.n = n;
  w.seq_len = seq_len;
  w.n_document_tokens = N;
  std::mt19937_64 rng(seed);
  const uint64_t range = static_cast<uint64_t>(N - seq_len);
  for (int i = 0; i < n; ++i) {
    const int64_t off = static_cast<int64_t>(rng() % range);
    w.offsets.push_back(off);
    w.tokens.insert(w.tokens.end(), ids.begin() + off, ids.begin() + off + seq_len);
  }
  return w;
}

}  // namespace qsweep
