// tokenizer.h — text to token ids: sentencepiece (tokenizer.model, through libsentencepiece) or
// a pre-tokenized file for models whose tokenizer is not sentencepiece.
//
// Pre-tokenized format (documented in the README): a text file whose first line is exactly
// "#qsweep-token-ids v1", followed by the document's token ids as non-negative decimal integers
// separated by any whitespace. The ids are the encoding of the whole document *without* BOS; the
// evaluation protocols add BOS themselves, as they do for text.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace qsweep {

constexpr const char* kTokenIdsHeader = "#qsweep-token-ids v1";

class Tokenizer {
 public:
  // Loads model_dir/tokenizer.model; throws naming the file when it cannot.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  std::vector<int32_t> encode(const std::string& text) const;
  int vocab_size() const;
  int bos_id() const;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

struct DocumentOptions {
  bool strip_one_trailing_newline = false;  // llama.cpp's perplexity tool does this
};

// Token ids of a data file (no BOS): pre-tokenized files are parsed, text files are encoded with
// the model directory's tokenizer.model (an error explains the pre-tokenized format when the
// model has none). Ids are checked against vocab_size.
std::vector<int32_t> load_document_tokens(const std::string& data_path, const std::string& model_dir,
                                          int vocab_size, const DocumentOptions& opt);

}  // namespace qsweep
