// hf_special_tokens.h — the special tokens a Hugging Face tokenizer puts around one sequence:
// tokenizer.json's post_processor (TemplateProcessing's `single` template: the SpecialToken
// items before and after $A; ByteLevel and null add none; Sequence combines), overridden by
// tokenizer_config.json's add_bos_token / add_eos_token when they are present, as transformers'
// fast tokenizers rebuild the template from them ("<bos> $A <eos>").
#pragma once
#include <functional>
#include <string>

#include "model/hf_json.h"
#include "model/tokenizer.h"

namespace qsweep {

/// post_processor: the "post_processor" member of tokenizer.json (may be null). config_path:
/// tokenizer_config.json (ignored when the file does not exist). token_id: content -> id, -1
/// when the tokenizer has no such token.
SpecialTokens resolve_special_tokens(const JsonAt& post_processor, const std::string& config_path,
                                     const std::function<int32_t(const std::string&)>& token_id);

}  // namespace qsweep
