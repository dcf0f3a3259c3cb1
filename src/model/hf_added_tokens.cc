// hf_added_tokens.cc — parsing and matching of added tokens.
#include "model/hf_added_tokens.h"

#include <algorithm>

#include "core/error.h"
#include "core/utf8.h"
#include "model/hf_bpe.h"

namespace qsweep {

std::vector<AddedToken> parse_added_tokens(const JsonAt& j) {
  j.expect_array();
  std::vector<AddedToken> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const JsonAt t = j.at(i);
    AddedToken a;
    const int64_t id = t["id"].integer();
    if (id < 0 || id >= kMaxTokenId) t["id"].fail("token id " + std::to_string(id) + " is out of range [0, 2^24)");
    a.id = static_cast<int32_t>(id);
    a.content = t["content"].str();
    if (a.content.empty()) t["content"].fail("an added token cannot be empty");
    a.special = t.bool_or("special", false);
    a.single_word = t.bool_or("single_word", false);
    a.lstrip = t.bool_or("lstrip", false);
    a.rstrip = t.bool_or("rstrip", false);
    a.normalized = t.bool_or("normalized", !a.special);
    for (const auto& prev : out) {
      if (prev.id == a.id && prev.content != a.content)
        t["id"].fail("id " + std::to_string(id) + " is given to both \"" + prev.content + "\" and \"" + a.content + "\"");
      if (prev.content == a.content && prev.id != a.id)
        t["content"].fail("\"" + a.content + "\" is listed with ids " + std::to_string(prev.id) + " and " + std::to_string(a.id));
    }
    out.push_back(std::move(a));
  }
  return out;
}

void AddedTokenMatcher::add(const AddedToken& token, std::string pattern) {
  if (pattern.empty()) return;
  entries_.push_back(Entry{std::move(pattern), token});
  const auto b = static_cast<unsigned char>(entries_.back().pattern[0]);
  first_byte_[b] = true;
  auto& bucket = by_first_byte_[b];
  bucket.push_back(entries_.size() - 1);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](size_t x, size_t y) { return entries_[x].pattern.size() > entries_[y].pattern.size(); });
}

bool AddedTokenMatcher::find(std::string_view s, size_t from, size_t* at, size_t* entry) const {
  for (size_t i = from; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (!first_byte_[b]) continue;
    for (size_t e : by_first_byte_[b]) {
      const std::string& p = entries_[e].pattern;
      if (s.size() - i >= p.size() && s.compare(i, p.size(), p) == 0) {
        *at = i;
        *entry = e;
        return true;
      }
    }
  }
  return false;
}

namespace {

// The code point ending just before byte `end` of a valid UTF-8 string, and where it starts.
char32_t prev_char(std::string_view s, size_t end, size_t* start) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  *start = b;
  size_t len;
  return utf8_decode(s, b, &len);
}

}  // namespace

void AddedTokenMatcher::split(std::string_view s, FunctionRef<void(std::string_view, int32_t, size_t)> emit) const {
  size_t done = 0, from = 0, at, e;
  while (from < s.size() && find(s, from, &at, &e)) {
    const AddedToken& tok = entries_[e].token;
    size_t start = at, stop = at + entries_[e].pattern.size();
    from = stop;  // the next search starts after the match, whatever is stripped or rejected
    if (tok.single_word) {
      size_t cs, len;
      const bool word_before = start > 0 && unicode_is_word(prev_char(s, start, &cs));
      const bool word_after = stop < s.size() && unicode_is_word(utf8_decode(s, stop, &len));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      size_t b = start, cs;
      while (b > 0 && unicode_is_whitespace(prev_char(s, b, &cs))) b = cs;
      start = std::max(b, done);
    }
    if (tok.rstrip) {
      size_t len;
      while (stop < s.size() && unicode_is_whitespace(utf8_decode(s, stop, &len))) stop += len;
    }
    if (done < start) emit(s.substr(done, start - done), -1, done);
    emit(s.substr(start, stop - start), tok.id, start);
    done = stop;
  }
  if (done < s.size()) emit(s.substr(done), -1, done);
}

}  // namespace qsweep
