// windows.cc — protocol window construction.
#include "eval/windows.h"

#include "core/error.h"

namespace qsweep {

Protocol parse_protocol(const std::string& s) {
  if (s == "gptq") return Protocol::Gptq;
  if (s == "llamacpp") return Protocol::LlamaCpp;
  QS_THROW("--protocol '" << s << "' is not known (expected gptq or llamacpp)");
}

const char* protocol_name(Protocol p) { return p == Protocol::Gptq ? "gptq" : "llamacpp"; }

EvalWindows make_windows(Protocol p, const std::vector<int32_t>& doc, const SpecialTokens& special, int ctx,
                         const std::string& source) {
  QS_CHECK(ctx >= 4, "--ctx " << ctx << " is too small (expected at least 4)");
  EvalWindows w;
  w.protocol = p;
  w.ctx = ctx;
  const auto& pre = special.prefix;
  w.n_document_tokens = static_cast<int64_t>(doc.size() + pre.size());
  w.n_windows = w.n_document_tokens / ctx;
  QS_CHECK(w.n_windows >= 1, source << ": has " << w.n_document_tokens << " tokens ("
                                    << (pre.empty() ? "the tokenizer adds no special tokens" : "special tokens included")
                                    << "), fewer than one window of --ctx " << ctx);
  w.tokens.resize(static_cast<size_t>(w.n_windows) * ctx);
  for (size_t i = 0; i < w.tokens.size(); ++i) w.tokens[i] = i < pre.size() ? pre[i] : doc[i - pre.size()];
  if (p == Protocol::Gptq) {
    w.score_begin = 0;
    w.score_end = ctx - 1;
  } else {
    if (special.adds_bos)
      for (int64_t k = 0; k < w.n_windows; ++k) w.tokens[static_cast<size_t>(k) * ctx] = special.bos_id;
    w.score_begin = ctx / 2;
    w.score_end = ctx - 1;
  }
  return w;
}

}  // namespace qsweep
