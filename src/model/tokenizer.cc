// tokenizer.cc — sentencepiece wrapper and the pre-tokenized reader.
#include "model/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace qsweep {

Tokenizer::Tokenizer(const std::string& model_path)
    : path_(model_path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto st = sp_->Load(model_path);
  QS_CHECK(st.ok(), model_path << ": cannot load sentencepiece model: " << st.ToString());
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  QS_CHECK(st.ok(), path_ << ": sentencepiece encode failed: " << st.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  QS_CHECK(in, path << ": cannot open data file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int32_t> parse_token_ids(const std::string& path, const std::string& body, size_t pos,
                                     int vocab_size) {
  std::vector<int32_t> ids;
  size_t line = 1;  // the header's own newline is consumed below and moves us to line 2
  const size_t n = body.size();
  while (pos < n) {
    const char ch = body[pos];
    if (ch == '\n') {
      ++line;
      ++pos;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(ch))) {
      ++pos;
      continue;
    }
    QS_CHECK(std::isdigit(static_cast<unsigned char>(ch)),
             path << ":" << line << ": expected a non-negative integer token id, found '" << ch
                  << "'");
    int64_t v = 0;
    while (pos < n && std::isdigit(static_cast<unsigned char>(body[pos]))) {
      v = v * 10 + (body[pos] - '0');
      QS_CHECK(v < vocab_size, path << ":" << line << ": token id " << v
                                    << "... is outside the model's vocabulary [0, " << vocab_size
                                    << ")");
      ++pos;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

}  // namespace

std::vector<int32_t> load_document_tokens(const std::string& data_path, const std::string& model_dir,
                                          int vocab_size, const DocumentOptions& opt) {
  std::string body = read_file(data_path);
  const std::string hdr = kTokenIdsHeader;
  if (body.compare(0, hdr.size(), hdr) == 0 &&
      (body.size() == hdr.size() || body[hdr.size()] == '\n' || body[hdr.size()] == '\r')) {
    return parse_token_ids(data_path, body, hdr.size(), vocab_size);
  }
  const std::string tok_path = model_dir + "/tokenizer.model";
  struct stat st;
  QS_CHECK(::stat(tok_path.c_str(), &st) == 0,
           model_dir << ": has no tokenizer.model, so " << data_path
                     << " must be pre-tokenized: a first line '" << kTokenIdsHeader
                     << "' followed by whitespace-separated token ids");
  if (opt.strip_one_trailing_newline && !body.empty() && body.back() == '\n') body.pop_back();
  Tokenizer tok(tok_path);
  QS_CHECK(tok.vocab_size() <= vocab_size,
           tok_path << ": tokenizer has " << tok.vocab_size() << " pieces but config.json's vocab_size is "
                    << vocab_size);
  return tok.encode(body);
}

}  // namespace qsweep
