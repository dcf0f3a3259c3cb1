// hf_regex.cc — PCRE2 (8-bit, UTF + UCP, JIT) behind Regex.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/hf_regex.h"

#include <pcre2.h>

#include "core/error.h"
#include "model/hf_json.h"

namespace qsweep {

namespace {
std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}
}  // namespace

Regex::Regex(const std::string& pattern, const std::string& where) : pattern_(pattern), where_(where) {
  int err = 0;
  PCRE2_SIZE off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                        &err, &off, nullptr);
  QS_CHECK(code_, where << ": cannot compile the regex /" << pattern << "/ at offset " << off << ": "
                        << pcre2_message(err));
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  md_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  mctx_ = pcre2_match_context_create(nullptr);
  if (jit_) {
    // Lookarounds over long runs (\s+(?!\S) on a page of spaces) need more than the default 32 KiB.
    jit_stack_ = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(mctx_, nullptr, jit_stack_);
  }
}

Regex::~Regex() {
  if (jit_stack_) pcre2_jit_stack_free(jit_stack_);
  if (mctx_) pcre2_match_context_free(mctx_);
  if (md_) pcre2_match_data_free(md_);
  if (code_) pcre2_code_free(code_);
}

bool Regex::find(std::string_view subject, size_t from, size_t* begin, size_t* end) const {
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const int rc = jit_ ? pcre2_jit_match(code_, s, subject.size(), from, 0, md_, mctx_)
                      : pcre2_match(code_, s, subject.size(), from, PCRE2_NO_UTF_CHECK, md_, mctx_);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  QS_CHECK(rc >= 0, where_ << ": regex /" << pattern_ << "/ failed on a " << subject.size()
                           << "-byte piece: " << pcre2_message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md_);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

Pattern::Pattern(const JsonAt& j) {
  j.expect_object();
  if (j.has("Regex")) {
    re_ = std::make_unique<Regex>(j["Regex"].str(), j.file() + ": " + j.path() + ".Regex");
  } else if (j.has("String")) {
    literal_ = j["String"].str();
    if (literal_.empty()) j["String"].fail("an empty pattern is not supported");
  } else {
    j.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  }
}

}  // namespace qsweep
