// sp_chunked.cc — chunked, parallel sentencepiece encoding (see sp_chunked.h for when it is exact).
#include "model/sp_chunked.h"

#include <sentencepiece_processor.h>

#include <utility>

#include "core/error.h"

namespace qsweep {

namespace {
constexpr size_t kChunk = 16 << 10;        // bytes per chunk
constexpr size_t kProbe = 3 * kChunk;      // the self-check encodes about this much twice
constexpr size_t kMinParallel = 4 * kChunk;  // shorter texts: one Encode()
bool printable(char c) { return c > ' ' && c < 0x7f; }
}  // namespace

std::vector<size_t> sp_cut_points(const std::string& text, size_t chunk) {
  std::vector<size_t> cuts{0};
  size_t p = chunk;
  while (p + 1 < text.size()) {
    size_t q = text.find(' ', p);
    while (q != std::string::npos && !(q > 0 && q + 1 < text.size() && printable(text[q - 1]) && printable(text[q + 1])))
      q = text.find(' ', q + 1);
    if (q == std::string::npos) break;
    cuts.push_back(q);
    p = q + chunk;
  }
  return cuts;
}

const char* sp_path_name(SpPath p) {
  switch (p) {
    case SpPath::kChunked: return "chunked at spaces, in parallel";
    case SpPath::kShort: return "whole text (short)";
    case SpPath::kVocabulary: return "whole text (a vocabulary piece spans a word boundary)";
    case SpPath::kSelfCheck: return "whole text (cutting at spaces changed the ids of the text's first chunks)";
  }
  return "?";
}

SpChunkedEncoder::SpChunkedEncoder(const sentencepiece::SentencePieceProcessor& sp, std::string path)
    : sp_(sp), path_(std::move(path)) {
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581, sentencepiece's space
  vocab_ok_ = true;
  for (int i = 0; i < sp_.GetPieceSize() && vocab_ok_; ++i) {
    const std::string& piece = sp_.IdToPiece(i);
    // A "▁" right after another character would join a word to the one before it ("▁▁" runs,
    // as in Llama-2's vocabulary, only ever match where the text has several spaces: never at a cut).
    for (size_t k = piece.find(kSpace, 1); k != std::string::npos && vocab_ok_; k = piece.find(kSpace, k + 1))
      if (k < kSpace.size() || piece.compare(k - kSpace.size(), kSpace.size(), kSpace) != 0) vocab_ok_ = false;
  }
}

std::vector<int> SpChunkedEncoder::encode_whole(const std::string& text) const {
  std::vector<int> ids;
  const auto st = sp_.Encode(text, &ids);
  QS_CHECK(st.ok(), path_ << ": sentencepiece encode failed: " << st.ToString());
  return ids;
}

std::vector<int> SpChunkedEncoder::encode_chunks(const std::string& text, size_t chunk) const {
  const std::vector<size_t> cuts = sp_cut_points(text, chunk);
  const int64_t n = static_cast<int64_t>(cuts.size());
  std::vector<std::vector<int>> parts(cuts.size());
  std::vector<std::string> errors(cuts.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    const size_t b = cuts[i] + (i > 0 ? 1 : 0), e = i + 1 < n ? cuts[i + 1] : text.size();
    const auto st = sp_.Encode(text.substr(b, e - b), &parts[i]);
    if (!st.ok()) errors[i] = st.ToString();
  }
  size_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    QS_CHECK(errors[i].empty(), path_ << ": sentencepiece encode failed: " << errors[i]);
    total += parts[i].size();
  }
  std::vector<int> ids;
  ids.reserve(total);
  for (const auto& p : parts) ids.insert(ids.end(), p.begin(), p.end());
  return ids;
}

std::vector<int> SpChunkedEncoder::encode(const std::string& text, SpPath* path) const {
  SpPath p = SpPath::kChunked;
  if (!vocab_ok_) {
    p = SpPath::kVocabulary;
  } else if (text.size() < kMinParallel) {
    p = SpPath::kShort;
  } else {
    // Self-check: the text's first chunks, whole and cut into quarter chunks, must agree.
    const std::vector<size_t> probe_cuts = sp_cut_points(text, kProbe);
    const std::string probe = text.substr(0, probe_cuts.size() > 1 ? probe_cuts[1] : text.size());
    if (encode_chunks(probe, kChunk / 4) != encode_whole(probe)) p = SpPath::kSelfCheck;
  }
  if (path) *path = p;
  return p == SpPath::kChunked ? encode_chunks(text, kChunk) : encode_whole(text);
}

}  // namespace qsweep
