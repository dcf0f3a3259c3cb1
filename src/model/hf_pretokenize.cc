// hf_pretokenize.cc — the pre-tokenizers. Splitting follows the Rust library's
// SplitDelimiterBehavior on the list of (range, is_match) segments a pattern yields.
#include "model/hf_pretokenize.h"

#include <vector>

#include "core/error.h"
#include "core/utf8.h"
#include "model/hf_byte_level.h"
#include "model/hf_regex.h"

namespace qsweep {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Segment {
  size_t begin, end;
  bool match;
};

// Folds the segments as SplitDelimiterBehavior does, into `out` (match flags are dropped).
void apply_behavior(const std::vector<Segment>& in, Behavior b, std::vector<Segment>& out) {
  out.clear();
  bool prev_match = false;
  switch (b) {
    case Behavior::Isolated:
      out = in;
      return;
    case Behavior::Removed:
      for (const auto& s : in)
        if (!s.match) out.push_back(s);
      return;
    case Behavior::MergedWithPrevious:
      for (const auto& s : in) {
        if (s.match && !prev_match && !out.empty()) out.back().end = s.end;
        else out.push_back(s);
        prev_match = s.match;
      }
      return;
    case Behavior::MergedWithNext:
      for (size_t i = in.size(); i-- > 0;) {
        const auto& s = in[i];
        if (s.match && !prev_match && !out.empty()) out.back().begin = s.begin;
        else out.push_back(s);
        prev_match = s.match;
      }
      for (size_t i = 0, j = out.size(); i + 1 < j; ++i, --j) std::swap(out[i], out[j - 1]);
      return;
    case Behavior::Contiguous:
      for (const auto& s : in) {
        if (s.match == prev_match && !out.empty()) out.back().end = s.end;
        else out.push_back(s);
        prev_match = s.match;
      }
      return;
  }
}

void emit_segments(std::string_view s, bool at_start, const std::vector<Segment>& segs, PieceSink emit) {
  for (const auto& g : segs)
    if (g.end > g.begin) emit(s.substr(g.begin, g.end - g.begin), at_start && g.begin == 0);
}

// Segments of a character predicate (Rust's `impl Pattern for Fn(char) -> bool`): each
// matching character alone, the runs between them as one segment each.
template <typename Pred>
void char_segments(std::string_view s, Pred pred, std::vector<Segment>& out) {
  out.clear();
  size_t last = 0, i = 0;
  while (i < s.size()) {
    size_t len;
    const char32_t c = utf8_decode(s, i, &len);
    if (pred(c)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + len, true});
      last = i + len;
    }
    i += len;
  }
  if (last < s.size()) out.push_back({last, s.size(), false});
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  void split(std::string_view s, bool at_start, PieceSink emit) const override { run(0, s, at_start, emit); }
  ByteLevelPreTokenizer* final_byte_level() override {
    return steps.empty() ? nullptr : steps.back()->final_byte_level();
  }

 private:
  void run(size_t i, std::string_view s, bool at_start, PieceSink emit) const {
    if (i == steps.size()) return emit(s, at_start);
    steps[i]->split(s, at_start, [&](std::string_view p, bool st) { run(i + 1, p, st, emit); });
  }
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(const JsonAt& pattern, Behavior b, bool invert) : pattern_(pattern), behavior_(b), invert_(invert) {}
  void split(std::string_view s, bool at_start, PieceSink emit) const override {
    segs_.clear();
    size_t prev = 0;
    pattern_.find_all(s, [&](size_t b, size_t e) {
      if (prev != b) segs_.push_back({prev, b, invert_});
      segs_.push_back({b, e, !invert_});
      prev = e;
    });
    if (prev != s.size()) segs_.push_back({prev, s.size(), invert_});
    apply_behavior(segs_, behavior_, out_);
    emit_segments(s, at_start, out_, emit);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
  mutable std::vector<Segment> segs_, out_;
};

class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void split(std::string_view s, bool at_start, PieceSink emit) const override {
    char_segments(s, unicode_is_numeric, segs_);
    apply_behavior(segs_, individual_ ? Behavior::Isolated : Behavior::Contiguous, out_);
    emit_segments(s, at_start, out_, emit);
  }

 private:
  bool individual_;
  mutable std::vector<Segment> segs_, out_;
};

enum class PrependScheme { First, Always, Never };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    utf8_append(rep_, replacement);
  }
  void split(std::string_view s, bool at_start, PieceSink emit) const override {
    buf_.clear();
    const bool starts_with_rep = s.substr(0, rep_.size()) == rep_ || (!s.empty() && s[0] == ' ');
    if (!starts_with_rep && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && at_start)))
      buf_ += rep_;
    for (char c : s) {
      if (c == ' ') buf_ += rep_;
      else buf_ += c;
    }
    if (!split_) return emit(buf_, at_start);
    char_segments(buf_, [this](char32_t c) { return c == replacement_; }, segs_);
    apply_behavior(segs_, Behavior::MergedWithNext, out_);
    emit_segments(buf_, at_start, out_, emit);
  }

 private:
  char32_t replacement_;
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
  mutable std::string buf_;
  mutable std::vector<Segment> segs_, out_;
};

Behavior parse_behavior(const JsonAt& j) {
  const std::string b = j.str();
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  j.fail("\"" + b + "\" is not supported (supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

char32_t parse_single_char(const JsonAt& j) {
  const std::string s = j.str();
  if (s.empty() || utf8_first_invalid(s) != s.size()) j.fail("expected a single character");
  size_t len;
  const char32_t c = utf8_decode(s, 0, &len);
  if (len != s.size()) j.fail("expected a single character, found \"" + s + "\"");
  return c;
}

}  // namespace

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
    : add_prefix_space_(add_prefix_space) {
  if (use_regex) re_ = std::make_unique<Regex>(kGpt2Pattern, where);
}

ByteLevelPreTokenizer::~ByteLevelPreTokenizer() = default;

void ByteLevelPreTokenizer::split(std::string_view s, bool at_start, PieceSink emit) const {
  std::string_view src = s;
  if (add_prefix_space_ && (s.empty() || s[0] != ' ')) {
    prefixed_.assign(1, ' ');
    prefixed_.append(s);
    src = prefixed_;
  }
  auto out = [&](size_t b, size_t e) {
    if (e <= b) return;
    const std::string_view p = src.substr(b, e - b);
    if (raw_) return emit(p, at_start && b == 0);
    mapped_.clear();
    byte_level_map(p, mapped_);
    emit(mapped_, at_start && b == 0);
  };
  if (!re_) return out(0, src.size());
  size_t prev = 0;
  re_->find_all(src, [&](size_t b, size_t e) {
    out(prev, b);
    out(b, e);
    prev = e;
  });
  out(prev, src.size());
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonAt& j) {
  const std::string t = j.type_in("pre-tokenizer", {"Sequence", "Split", "ByteLevel", "Digits", "Metaspace"});
  if (t == "Sequence") {
    auto seq = std::make_unique<SequencePreTokenizer>();
    const JsonAt list = j["pretokenizers"];
    list.expect_array();
    for (size_t i = 0; i < list.size(); ++i) seq->steps.push_back(parse_pre_tokenizer(list.at(i)));
    return seq;
  }
  if (t == "Split")
    return std::make_unique<SplitPreTokenizer>(j["pattern"], parse_behavior(j["behavior"]), j.bool_or("invert", false));
  if (t == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(j.bool_or("add_prefix_space", true), j.bool_or("use_regex", true),
                                                   j.file() + ": " + j.path());
  if (t == "Digits") return std::make_unique<DigitsPreTokenizer>(j.bool_or("individual_digits", false));
  // Metaspace: older files carry add_prefix_space instead of prepend_scheme.
  PrependScheme scheme = j.bool_or("add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
  if (j.has("prepend_scheme")) {
    const std::string p = j["prepend_scheme"].str();
    if (p == "first") scheme = PrependScheme::First;
    else if (p == "always") scheme = PrependScheme::Always;
    else if (p == "never") scheme = PrependScheme::Never;
    else j["prepend_scheme"].fail("\"" + p + "\" is not supported (supported: first, always, never)");
  }
  const char32_t rep = j.has("replacement") ? parse_single_char(j["replacement"]) : char32_t(0x2581);
  return std::make_unique<MetaspacePreTokenizer>(rep, scheme, j.bool_or("split", true));
}

}  // namespace qsweep
