// utf8.h — UTF-8 decoding and the few Unicode character properties the tokenizer.json reader
// needs outside its regexes (Rust's char::is_whitespace / is_numeric and the regex crate's \w, which
// the Hugging Face tokenizers library uses for added tokens, Digits and single_word). The
// properties come from utf8proc's tables, so they follow utf8proc's Unicode version.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qsweep {

/// Byte length of the UTF-8 sequence a valid lead byte starts (1 for ASCII and stray bytes).
inline size_t utf8_seq_len(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

/// Decodes the code point at s[pos] of a valid UTF-8 string; *len receives its byte length.
char32_t utf8_decode(std::string_view s, size_t pos, size_t* len);

/// Appends the UTF-8 encoding of cp.
void utf8_append(std::string& out, char32_t cp);

/// The offset of the first byte of s that is not part of well-formed UTF-8 (overlongs,
/// surrogates and code points past U+10FFFF are ill-formed); s.size() when s is valid.
size_t utf8_first_invalid(std::string_view s);

/// s with each maximal ill-formed subsequence replaced by U+FFFD, as Python's
/// bytes.decode("utf-8", errors="replace") and Rust's String::from_utf8_lossy do.
std::string utf8_replace_invalid(std::string_view s);

bool unicode_is_whitespace(char32_t c);    ///< Rust char::is_whitespace (White_Space)
bool unicode_is_numeric(char32_t c);       ///< Rust char::is_numeric (Nd, Nl, No)
bool unicode_is_word(char32_t c);          ///< Rust regex \w (L*, M*, Nd, Nl, Pc, ZWJ/ZWNJ)

}  // namespace qsweep
