// hf_byte_level.cc — the byte <-> character tables of GPT-2's byte-level alphabet.
#include "model/hf_byte_level.h"

#include <array>

#include "core/utf8.h"

namespace qsweep {

namespace {

struct Tables {
  std::array<std::string, 256> to_char;
  std::array<int, 512> to_byte;  // code point (all < 0x144) -> byte, -1 if none
  Tables() {
    to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const int cp = printable ? b : next++;
      utf8_append(to_char[b], static_cast<char32_t>(cp));
      to_byte[cp] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_level_char(unsigned char b) { return tables().to_char[b]; }

void byte_level_map(std::string_view raw, std::string& out) {
  const Tables& t = tables();
  for (unsigned char b : raw) out += t.to_char[b];
}

bool byte_level_unmap(std::string_view mapped, std::string* raw) {
  const Tables& t = tables();
  size_t i = 0;
  while (i < mapped.size()) {
    size_t len;
    const char32_t cp = utf8_decode(mapped, i, &len);
    if (cp >= t.to_byte.size() || t.to_byte[cp] < 0) return false;
    *raw += static_cast<char>(t.to_byte[cp]);
    i += len;
  }
  return true;
}

}  // namespace qsweep
