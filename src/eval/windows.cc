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

EvalWindows make_windows(Protocol p, const std::vector<int32_t>& doc, int bos_id, int ctx,
                         const std::string& source) {
  QS_CHECK(ctx >= 4, "--ctx " << ctx << " is too small (expected at least 4)");
  EvalWindows w;
  w.protocol = p;
  w.ctx = ctx;
  w.n_document_tokens = static_cast<int64_t>(doc.size()) + 1;
  w.n_windows = w.n_document_tokens / ctx;
  QS_CHECK(w.n_windows >= 1, source << ": has " << w.n_document_tokens
                                                        << " tokens (BOS included), fewer than one "
                                                        << "window of --ctx " << ctx);
  w.tokens.resize(static_cast<size_t>(w.n_windows) * ctx);
  w.tokens[0] = bos_id;
  for (size_t i = 1; i < w.tokens.size(); ++i) w.tokens[i] = doc[i - 1];
  if (p == Protocol::Gptq) {
    w.score_begin = 0;
    w.score_end = ctx - 1;
  } else {
    for (int64_t k = 0; k < w.n_windows; ++k) w.tokens[static_cast<size_t>(k) * ctx] = bos_id;
    w.score_begin = ctx / 2;
    w.score_end = ctx - 1;
  }
  return w;
}

}  // namespace qsweep
