// windows.h — the evaluation protocols: how a document's token ids become fixed-length windows
// and which positions of each window are scored.
//
//  gptq (GPTQ/AWQ papers, the default): ids = the tokenizer's own special tokens + encode(file)
//    ([BOS] + ... for Llama-2/3, nothing for SmolLM2/Qwen); non-overlapping windows of ctx
//    tokens, remainder dropped; positions 0..ctx-2 predict the next token of the window;
//    ppl = exp(mean over windows of the window's mean NLL).
//  llamacpp (llama-perplexity): ids = the tokenizer's own special tokens + encode(file minus one
//    trailing newline); floor(N/ctx) chunks, remainder dropped; each chunk's first token
//    overwritten with BOS when the tokenizer adds BOS (as llama.cpp does); positions
//    ctx/2..ctx-2 predict tokens ctx/2+1..ctx-1; ppl = exp(mean NLL over all scored tokens).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace qsweep {

enum class Protocol { Gptq, LlamaCpp };
Protocol parse_protocol(const std::string& s);  // throws for an unknown name
const char* protocol_name(Protocol p);

struct EvalWindows {
  Protocol protocol = Protocol::Gptq;
  int ctx = 0;
  int64_t n_windows = 0;
  int64_t n_document_tokens = 0;  // the tokenizer's special tokens included
  std::vector<int32_t> tokens;    // [n_windows, ctx], BOS overwrites applied
  int score_begin = 0, score_end = 0;  // positions p in [begin, end) predict token p+1
  int scored_per_window() const { return score_end - score_begin; }
};

// `doc` is the document's ids without special tokens, `special` the tokenizer's (prefix and
// BOS); `source` names the document in errors (the data file).
EvalWindows make_windows(Protocol p, const std::vector<int32_t>& doc, const SpecialTokens& special, int ctx,
                         const std::string& source = "the evaluation text");

}  // namespace qsweep
