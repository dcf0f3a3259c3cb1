// hf_regex.h — the regular expressions of tokenizer.json (Split and Replace patterns, GPT-2's
// ByteLevel regex), run by PCRE2 with its JIT. The Rust library runs them with Oniguruma; both
// read the same Perl syntax (\p{L}, \p{N}, (?i:...), lookahead). PCRE2_UCP makes \s, \w, \d
// and case folding Unicode-aware as Oniguruma's are.
//
// Subjects must be valid UTF-8: the tokenizer replaces ill-formed input by U+FFFD before any
// regex sees it (hf_tokenizer.cc), so matching skips PCRE2's per-call UTF check.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;
struct pcre2_real_jit_stack_8;

namespace qsweep {

class Regex {
 public:
  /// Compiles pattern; a syntax error throws naming `where` (file and JSON path) and the offset.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  /// The next match in subject at or after `from`: true with [*begin, *end), or false. After an
  /// empty match the caller continues one character further (find_all does).
  bool find(std::string_view subject, size_t from, size_t* begin, size_t* end) const;

  /// Calls f(begin, end) for each non-overlapping match, left to right.
  template <typename F>
  void find_all(std::string_view subject, F&& f) const {
    size_t pos = 0, b, e;
    while (pos <= subject.size() && find(subject, pos, &b, &e)) {
      f(b, e);
      if (e > b) {
        pos = e;
      } else {  // empty match: step over one character
        if (e >= subject.size()) break;
        pos = e + utf8_step(static_cast<unsigned char>(subject[e]));
      }
    }
  }

  const std::string& pattern() const { return pattern_; }

 private:
  static size_t utf8_step(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }
  std::string pattern_, where_;
  pcre2_real_code_8* code_ = nullptr;
  pcre2_real_match_data_8* md_ = nullptr;  // one per Regex: the tokenizer serialises encode()
  pcre2_real_match_context_8* mctx_ = nullptr;
  pcre2_real_jit_stack_8* jit_stack_ = nullptr;
  bool jit_ = false;
};

class JsonAt;

/// A Split / Replace pattern: {"String": literal} or {"Regex": pcre}.
class Pattern {
 public:
  explicit Pattern(const JsonAt& j);  ///< j is the "pattern" member
  template <typename F>
  void find_all(std::string_view subject, F&& f) const {
    if (re_) return re_->find_all(subject, f);
    for (size_t pos = subject.find(literal_); pos != std::string_view::npos;
         pos = subject.find(literal_, pos + literal_.size()))
      f(pos, pos + literal_.size());
  }
  std::string describe() const { return re_ ? "/" + re_->pattern() + "/" : "\"" + literal_ + "\""; }

 private:
  std::string literal_;
  std::unique_ptr<Regex> re_;
};

}  // namespace qsweep
