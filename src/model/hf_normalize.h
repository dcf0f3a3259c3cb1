// hf_normalize.h — tokenizer.json normalizers: string -> string rewrites applied to each piece
// of text between added tokens before pre-tokenization (Sequence, NFC, NFD, NFKC, NFKD,
// Prepend, Replace). Offsets are not tracked: qsweep only needs ids.
#pragma once
#include <memory>
#include <string>

#include "model/hf_json.h"

namespace qsweep {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

/// The normalizer of tokenizer.json (j = the "normalizer" member, not null).
std::unique_ptr<Normalizer> parse_normalizer(const JsonAt& j);

}  // namespace qsweep
