// hf_decode.h — tokenizer.json decoders: token strings back to text (ByteLevel, Metaspace,
// Replace, ByteFallback, Fuse, Strip, Sequence), each a step over the list of token strings as
// in the Rust library's decode_chain. Only decode() uses them; encoding never does.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/hf_json.h"

namespace qsweep {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

/// The decoder of tokenizer.json (j = the "decoder" member, not null).
std::unique_ptr<Decoder> parse_decoder(const JsonAt& j);

}  // namespace qsweep
