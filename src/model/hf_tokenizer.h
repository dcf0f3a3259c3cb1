// hf_tokenizer.h — the Hugging Face tokenizers format (tokenizer.json), read in C++.
// (Being implemented; see hf_tokenizer.cc.)
#pragma once
#include <memory>
#include <string>

#include "model/tokenizer.h"

namespace qsweep {

/// Reads tokenizer.json at json_path (and tokenizer_config.json at config_path when that file
/// exists: add_bos_token / add_eos_token override the post-processor, as transformers does).
/// Anything unsupported stops with an error naming the file, the JSON path and the type;
/// malformed JSON stops with the byte offset.
std::unique_ptr<TextTokenizer> load_hf_tokenizer(const std::string& json_path, const std::string& config_path);

}  // namespace qsweep
