// hf_normalize.cc — the normalizers; Unicode normal forms come from utf8proc.
#include "model/hf_normalize.h"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "model/hf_regex.h"

namespace qsweep {

namespace {

class SequenceNormalizer : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> steps;
  void normalize(std::string& s) const override {
    for (const auto& n : steps) n->normalize(s);
  }
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string& s) const override {
    bool ascii = true;
    for (unsigned char c : s) ascii &= c < 0x80;
    if (ascii || s.empty()) return;  // ASCII is invariant under every normal form
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                static_cast<utf8proc_ssize_t>(s.size()), &out,
                                static_cast<utf8proc_option_t>(options_));
    QS_CHECK(n >= 0, "Unicode normalization failed: " << utf8proc_errmsg(n));
    s.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prefix_(std::move(p)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(const JsonAt& pattern, std::string content) : pattern_(pattern), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    std::string out;
    size_t last = 0;
    bool any = false;
    pattern_.find_all(s, [&](size_t b, size_t e) {
      if (!any) out.reserve(s.size() + 16);
      any = true;
      out.append(s, last, b - last);
      out += content_;
      last = e;
    });
    if (!any) return;
    out.append(s, last, std::string::npos);
    s.swap(out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const JsonAt& j) {
  const std::string t = j.type_in("normalizer", {"Sequence", "NFC", "NFD", "NFKC", "NFKD", "Prepend", "Replace"});
  if (t == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    const JsonAt list = j["normalizers"];
    list.expect_array();
    for (size_t i = 0; i < list.size(); ++i) seq->steps.push_back(parse_normalizer(list.at(i)));
    return seq;
  }
  if (t == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (t == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (t == "NFKC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (t == "NFKD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (t == "Prepend") return std::make_unique<PrependNormalizer>(j["prepend"].str());
  return std::make_unique<ReplaceNormalizer>(j["pattern"], j["content"].str());
}

}  // namespace qsweep
