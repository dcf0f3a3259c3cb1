// tokenizer.cc — which tokenizer a model folder uses (tokenizer.json before tokenizer.model), the
// sentencepiece implementation, and the pre-tokenized reader.
#include "model/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "core/log.h"
#include "eval/eval_data.h"
#include "model/token_cache.h"
#include "core/utf8.h"
#include "model/hf_tokenizer.h"
#include "model/sp_chunked.h"

namespace qsweep {

namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// tokenizer_config.json's add_bos_token / add_eos_token when present and boolean.
struct AddFlags {
  int add_bos = -1, add_eos = -1;  // -1: not set
};
AddFlags read_add_flags(const std::string& config_path) {
  AddFlags f;
  if (!is_file(config_path)) return f;
  const nlohmann::json j = read_json_file(config_path, "tokenizer configuration");
  QS_CHECK(j.is_object(), config_path << ": expected a JSON object at the top level");
  for (auto [key, dst] : {std::pair<const char*, int*>{"add_bos_token", &f.add_bos}, {"add_eos_token", &f.add_eos}}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    QS_CHECK(j[key].is_boolean(), config_path << ": " << key << ": expected true or false, found " << j[key].dump());
    *dst = j[key].get<bool>() ? 1 : 0;
  }
  return f;
}

// tokenizer.model through libsentencepiece. Its special tokens follow transformers'
// LlamaTokenizer: BOS first unless tokenizer_config.json says add_bos_token: false.
class SentencePieceTokenizer final : public TextTokenizer {
 public:
  SentencePieceTokenizer(const std::string& model_path, const std::string& config_path)
      : path_(model_path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
    const auto st = sp_->Load(model_path);
    QS_CHECK(st.ok(), model_path << ": cannot load sentencepiece model: " << st.ToString());
    const AddFlags f = read_add_flags(config_path);
    special_.bos_id = sp_->bos_id();
    if (f.add_bos != 0 && sp_->bos_id() >= 0) special_.prefix.push_back(sp_->bos_id());
    if (f.add_eos == 1 && sp_->eos_id() >= 0) special_.suffix.push_back(sp_->eos_id());
    special_.adds_bos = !special_.prefix.empty();
    chunked_ = std::make_unique<SpChunkedEncoder>(*sp_, path_);
  }
  std::vector<int32_t> encode(const std::string& text) const override {
    SpPath path;
    const std::vector<int> ids = chunked_->encode(text, &path);
    if (path == SpPath::kVocabulary || path == SpPath::kSelfCheck)
      log_info("%s: %zu bytes encoded as one %s", path_.c_str(), text.size(), sp_path_name(path));
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    const auto st = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &out);
    QS_CHECK(st.ok(), path_ << ": sentencepiece decode failed: " << st.ToString());
    return out;
  }
  int vocab_size() const override { return sp_->GetPieceSize(); }
  const std::string& path() const override { return path_; }
  std::string describe() const override {
    return "tokenizer.model: sentencepiece, " + std::to_string(vocab_size()) + " pieces";
  }

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<SpChunkedEncoder> chunked_;
};

std::string read_file(const std::string& path) {
  struct stat st {};
  QS_CHECK(::stat(path.c_str(), &st) == 0, path << ": cannot open data file (no such file)");
  QS_CHECK(!S_ISDIR(st.st_mode), path << ": is a directory, not a data file");
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

std::vector<std::string> tokenizer_files(const std::string& model_dir) {
  std::vector<std::string> files;
  for (const char* name : {"/tokenizer.json", "/tokenizer.model"}) {
    if (is_file(model_dir + name)) {
      files.push_back(model_dir + name);
      break;
    }
  }
  if (!files.empty() && is_file(model_dir + "/tokenizer_config.json")) files.push_back(model_dir + "/tokenizer_config.json");
  return files;
}

std::unique_ptr<TextTokenizer> load_model_tokenizer(const std::string& model_dir) {
  const std::string config = model_dir + "/tokenizer_config.json";
  if (is_file(model_dir + "/tokenizer.json")) return load_hf_tokenizer(model_dir + "/tokenizer.json", config);
  if (is_file(model_dir + "/tokenizer.model"))
    return std::make_unique<SentencePieceTokenizer>(model_dir + "/tokenizer.model", config);
  return nullptr;
}

SpecialTokens model_special_tokens(const std::string& model_dir, int config_bos_id) {
  if (auto tok = load_model_tokenizer(model_dir)) return tok->special();
  SpecialTokens s;
  s.bos_id = config_bos_id;
  s.prefix = {config_bos_id};
  s.adds_bos = true;
  return s;
}

std::vector<int32_t> load_document_tokens(const std::string& data_path, const std::string& model_dir,
                                          int vocab_size, const DocumentOptions& opt) {
  std::string body = read_file(data_path);
  if (is_jsonl_path(data_path)) body = jsonl_documents_text(data_path, body);
  const std::string hdr = kTokenIdsHeader;
  if (body.compare(0, 17, hdr, 0, 17) == 0) {  // "#qsweep-token-ids": must be exactly the header
    const size_t eol = body.find('\n');
    std::string first = body.substr(0, eol);
    if (!first.empty() && first.back() == '\r') first.pop_back();
    QS_CHECK(first == hdr, data_path << ":1: the header '" << first << "' is not the supported pre-tokenized header '"
                                     << hdr << "' (exactly that, nothing after it)");
    return parse_token_ids(data_path, body, first.size(), vocab_size);
  }
  const std::vector<std::string> tok_files = tokenizer_files(model_dir);
  QS_CHECK(!tok_files.empty(), model_dir << ": has neither tokenizer.json nor tokenizer.model, so " << data_path
                                     << " must be pre-tokenized: a first line '" << kTokenIdsHeader
                                     << "' followed by whitespace-separated token ids");
  if (opt.strip_one_trailing_newline && !body.empty() && body.back() == '\n') body.pop_back();
  const size_t bad = utf8_first_invalid(body);
  if (bad != body.size())
    log_warn("%s: not valid UTF-8 (first ill-formed byte at offset %zu): binary data, or another encoding? "
             "Each ill-formed sequence is tokenized as U+FFFD (tokenizer.json) or as the tokenizer.model's "
             "unknown piece",
             data_path.c_str(), bad);
  // A hit skips loading the tokenizer too (a 128k-vocabulary tokenizer.json takes a while to
  // parse): the entry was written after this same tokenizer passed the vocabulary check below.
  const std::string cache_dir = opt.use_cache ? token_cache_dir() : std::string();
  std::string key;
  if (!cache_dir.empty()) {
    key = token_cache_key(body, tok_files, vocab_size);
    if (auto hit = token_cache_get(cache_dir, key)) {
      log_info("%s: %zu token ids from the token cache (%s; QSWEEP_TOKEN_CACHE=off skips it)", data_path.c_str(),
               hit->size(), cache_dir.c_str());
      return std::move(*hit);
    }
  }
  auto tok = load_model_tokenizer(model_dir);
  QS_ASSERT(tok != nullptr, "a tokenizer file was found above");
  QS_CHECK(tok->vocab_size() <= vocab_size,
           tok->path() << ": the tokenizer has " << tok->vocab_size() << " tokens but config.json's vocab_size is "
                       << vocab_size);
  std::vector<int32_t> ids = tok->encode(body);
  if (!cache_dir.empty() && opt.write_cache) token_cache_put(cache_dir, key, ids);
  return ids;
}

}  // namespace qsweep
