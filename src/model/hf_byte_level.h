// hf_byte_level.h — GPT-2's byte-level alphabet: each of the 256 byte values stands for one
// printable Unicode character (the printable Latin-1 bytes for themselves, the others for
// U+0100 onwards), so that a byte-level BPE vocabulary is a set of ordinary strings. The
// ByteLevel pre-tokenizer maps text into this alphabet and the ByteLevel decoder maps it back.
#pragma once
#include <string>
#include <string_view>

namespace qsweep {

/// The UTF-8 of the character standing for byte b.
const std::string& byte_level_char(unsigned char b);

/// Appends the byte-level form of raw bytes.
void byte_level_map(std::string_view raw, std::string& out);

/// The bytes a byte-level string stands for; false (and *raw partial) when it holds a
/// character outside the alphabet.
bool byte_level_unmap(std::string_view mapped, std::string* raw);

}  // namespace qsweep
