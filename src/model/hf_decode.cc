// hf_decode.cc — the decoders.
#include "model/hf_decode.h"

#include "core/utf8.h"
#include "model/hf_byte_level.h"
#include "model/hf_regex.h"

namespace qsweep {

namespace {

class SequenceDecoder : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> steps;
  void decode_chain(std::vector<std::string>& t) const override {
    for (const auto& d : steps) d->decode_chain(t);
  }
};

// All tokens into one string of the bytes they stand for; a character outside the alphabet
// (an added token's) is kept as it is.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& t) const override {
    std::string raw;
    for (const auto& tok : t) {
      size_t i = 0;
      while (i < tok.size()) {
        size_t len;
        utf8_decode(tok, i, &len);
        if (!byte_level_unmap(std::string_view(tok).substr(i, len), &raw)) raw.append(tok, i, len);
        i += len;
      }
    }
    t.assign(1, utf8_replace_invalid(raw));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool strip_first) : rep_(std::move(rep)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& t) const override {
    for (size_t i = 0; i < t.size(); ++i) {
      std::string out;
      const std::string& s = t[i];
      for (size_t p = 0; p < s.size();) {
        if (s.compare(p, rep_.size(), rep_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          p += rep_.size();
        } else {
          out += s[p++];
        }
      }
      t[i].swap(out);
    }
  }

 private:
  std::string rep_;
  bool strip_first_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(const JsonAt& pattern, std::string content) : pattern_(pattern), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& t) const override {
    for (auto& s : t) {
      std::string out;
      size_t last = 0;
      pattern_.find_all(s, [&](size_t b, size_t e) {
        out.append(s, last, b - last);
        out += content_;
        last = e;
      });
      out.append(s, last, std::string::npos);
      s.swap(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& t) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (utf8_first_invalid(bytes) == bytes.size()) out.push_back(bytes);
      else
        for (size_t k = 0; k < bytes.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      bytes.clear();
    };
    for (auto& s : t) {
      int v = -1;
      if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>') {
        char* end = nullptr;
        const std::string hex = s.substr(3, 2);
        const long x = std::strtol(hex.c_str(), &end, 16);
        if (end == hex.c_str() + 2) v = static_cast<int>(x);
      }
      if (v >= 0) {
        bytes += static_cast<char>(v);
      } else {
        flush();
        out.push_back(std::move(s));
      }
    }
    flush();
    t.swap(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& t) const override {
    std::string all;
    for (const auto& s : t) all += s;
    t.assign(1, all);
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& t) const override {
    for (auto& s : t) {
      std::vector<std::pair<size_t, size_t>> chars;  // (offset, length)
      for (size_t i = 0, len; i < s.size(); i += len) {
        utf8_decode(s, i, &len);
        chars.emplace_back(i, len);
      }
      size_t b = 0, e = chars.size();
      while (b < start_ && b < e && utf8_decode(s, chars[b].first, &chars[b].second) == c_) ++b;
      for (size_t k = 0; k < stop_ && e > b && utf8_decode(s, chars[e - 1].first, &chars[e - 1].second) == c_; ++k) --e;
      const size_t from = b < chars.size() ? chars[b].first : s.size();
      const size_t to = e < chars.size() ? chars[e].first : s.size();
      s = s.substr(from, to > from ? to - from : 0);
    }
  }

 private:
  char32_t c_;
  size_t start_, stop_;
};

char32_t single_char(const JsonAt& j) {
  const std::string s = j.str();
  size_t len = 0;
  if (s.empty() || utf8_first_invalid(s) != s.size() || (utf8_decode(s, 0, &len), len != s.size()))
    j.fail("expected a single character, found \"" + s + "\"");
  return utf8_decode(s, 0, &len);
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const JsonAt& j) {
  const std::string t =
      j.type_in("decoder", {"Sequence", "ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse", "Strip"});
  if (t == "Sequence") {
    auto seq = std::make_unique<SequenceDecoder>();
    const JsonAt list = j["decoders"];
    list.expect_array();
    for (size_t i = 0; i < list.size(); ++i) seq->steps.push_back(parse_decoder(list.at(i)));
    return seq;
  }
  if (t == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (t == "Metaspace") {
    std::string rep = "\xE2\x96\x81";
    if (j.has("replacement")) {
      rep.clear();
      utf8_append(rep, single_char(j["replacement"]));
    }
    bool strip = j.bool_or("add_prefix_space", true);
    if (j.has("prepend_scheme")) strip = j["prepend_scheme"].str() != "never";
    return std::make_unique<MetaspaceDecoder>(rep, strip);
  }
  if (t == "Replace") return std::make_unique<ReplaceDecoder>(j["pattern"], j["content"].str());
  if (t == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (t == "Fuse") return std::make_unique<FuseDecoder>();
  const int64_t start = j["start"].integer(), stop = j["stop"].integer();
  if (start < 0 || stop < 0) j.fail("start and stop must be non-negative");
  return std::make_unique<StripDecoder>(single_char(j["content"]), size_t(start), size_t(stop));
}

}  // namespace qsweep
