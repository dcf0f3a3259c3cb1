// tokenizer.h — text to token ids for a model folder. One interface, two implementations:
// tokenizer.json (the Hugging Face tokenizers format, read in C++: model/hf_tokenizer.h), preferred
// whenever the folder has one, as transformers' fast tokenizers do; else tokenizer.model
// (sentencepiece, through libsentencepiece).
//
// encode() returns the ids of the text alone. What the model's own tokenizer adds around a
// sequence (its post-processor's special tokens, or tokenizer_config.json's add_bos_token) is
// kept apart in SpecialTokens, so that the evaluation protocols prepend BOS exactly when the
// model's tokenizer does (Llama-2/3 do; SmolLM2 and Qwen do not).
//
// Pre-tokenized format (documented in the README): a text file whose first line is exactly
// "#qsweep-token-ids v1", followed by the document's token ids as non-negative decimal integers
// separated by any whitespace. The ids are the encoding of the whole document without special
// tokens; the evaluation protocols add the tokenizer's own special tokens themselves, as they do
// for text.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qsweep {

constexpr const char* kTokenIdsHeader = "#qsweep-token-ids v1";

// The special tokens a tokenizer puts around one sequence.
struct SpecialTokens {
  std::vector<int32_t> prefix;  ///< ids before the text (e.g. [BOS]); empty for SmolLM2, Qwen
  std::vector<int32_t> suffix;  ///< ids after the text (e.g. [EOS] with add_eos_token); unused by the protocols
  int32_t bos_id = -1;          ///< the tokenizer's BOS id; -1 when it names none
  bool adds_bos = false;        ///< prefix contains bos_id (llama.cpp's llama_vocab_get_add_bos)
};

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  /// The text alone: no BOS, no post-processor tokens. Throws naming the tokenizer file on failure.
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  /// The text of ids (special tokens included as their content).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  /// One more than the largest id the tokenizer can produce.
  virtual int vocab_size() const = 0;
  /// The file it was read from.
  virtual const std::string& path() const = 0;
  /// A short description for logs, e.g. "tokenizer.json: BPE, byte-level, 49152 tokens".
  virtual std::string describe() const = 0;
  const SpecialTokens& special() const { return special_; }

 protected:
  SpecialTokens special_;
};

/// The model folder's tokenizer: tokenizer.json when present, else tokenizer.model; nullptr
/// when it has neither. tokenizer_config.json beside it is read for add_bos_token/add_eos_token.
std::unique_ptr<TextTokenizer> load_model_tokenizer(const std::string& model_dir);

/// The files the tokenizer of a model folder is read from (for cache keys and fingerprints):
/// the tokenizer file in use and tokenizer_config.json, those that exist.
std::vector<std::string> tokenizer_files(const std::string& model_dir);

/// The special tokens the evaluation protocols put before a document of model_dir: the
/// tokenizer's own; a folder without a tokenizer (pre-tokenized data only) gets config.json's
/// bos_token_id, as before tokenizer.json support.
SpecialTokens model_special_tokens(const std::string& model_dir, int config_bos_id);

struct DocumentOptions {
  bool strip_one_trailing_newline = false;  // llama.cpp's perplexity tool does this
  bool use_cache = true;    // look the text up in the token cache (model/token_cache.h)
  bool write_cache = true;  // store a miss there (one rank of a job does)
};

// Token ids of a data file (no special tokens): pre-tokenized files are parsed, JSON Lines files
// (*.jsonl) give their documents' text (eval/eval_data.h), text files are encoded with the model directory's tokenizer (an error explains the pre-tokenized format when
// the model has none). Ids are checked against vocab_size.
std::vector<int32_t> load_document_tokens(const std::string& data_path, const std::string& model_dir,
                                          int vocab_size, const DocumentOptions& opt);

}  // namespace qsweep
