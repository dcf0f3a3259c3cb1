// hf_added_tokens.h — tokenizer.json's added_tokens: strings (special tokens such as
// <|endoftext|>, and others) that are cut out of the text before the model runs and get their
// own id. Matching follows the Rust library: leftmost-longest over all tokens of a set, matches
// scanned left to right without overlap; a single_word token only counts when no word character
// touches it; lstrip / rstrip make the token swallow the whitespace on its left / right.
// Tokens with normalized=false are matched on the raw text, those with normalized=true on each
// normalized piece (their content normalized the same way), so the tokenizer holds two sets.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/hf_pretokenize.h"

namespace qsweep {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

/// Parses the added_tokens array (j), checking ids.
std::vector<AddedToken> parse_added_tokens(const JsonAt& j);

class AddedTokenMatcher {
 public:
  /// `patterns[i]` is what token i is matched as (its content, or its normalized content).
  void add(const AddedToken& token, std::string pattern);
  bool empty() const { return entries_.empty(); }

  /// Cuts s into text pieces and tokens: emit(piece, id, offset) with id = -1 for text (never
  /// empty) and the token id for a match (piece = the matched span, strips included).
  void split(std::string_view s, FunctionRef<void(std::string_view, int32_t, size_t)> emit) const;

 private:
  struct Entry {
    std::string pattern;
    AddedToken token;
  };
  // Leftmost-longest match at or after `from`: the entry index and its offset, or false.
  bool find(std::string_view s, size_t from, size_t* at, size_t* entry) const;

  std::vector<Entry> entries_;
  std::vector<std::vector<size_t>> by_first_byte_ = std::vector<std::vector<size_t>>(256);  // longest first
  bool first_byte_[256] = {};
};

}  // namespace qsweep
