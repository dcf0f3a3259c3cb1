// hf_tokenizer.cc — tokenizer.json read in C++: the pipeline of the Hugging Face tokenizers
// library for one text, without offsets or post-processing:
//   1. added tokens with normalized=false are cut out of the raw text;
//   2. each remaining piece is normalized, and added tokens with normalized=true are cut out;
//   3. the pre-tokenizer splits what is left into pre-tokens;
//   4. the BPE model encodes each pre-token (cached).
// Ill-formed UTF-8 in the input is replaced by U+FFFD first (with a warning): the Rust library
// only accepts valid strings, and Python callers usually read files with errors="replace".
//
// encode() holds a mutex: the BPE cache and the pre-tokenizers' scratch buffers are shared.
// truncation and padding in tokenizer.json are ignored: they apply to batches of model inputs,
// not to encoding a document.
#include "model/hf_tokenizer.h"

#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/utf8.h"
#include "model/hf_added_tokens.h"
#include "model/hf_bpe.h"
#include "model/hf_decode.h"
#include "model/hf_json.h"
#include "model/hf_normalize.h"
#include "model/hf_pretokenize.h"
#include "model/hf_special_tokens.h"

namespace qsweep {

namespace {

class HfTokenizer : public TextTokenizer {
 public:
  HfTokenizer(const std::string& json_path, const std::string& config_path);
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }
  const std::string& path() const override { return path_; }
  std::string describe() const override { return describe_; }

 private:
  int32_t token_id(const std::string& content) const;

  std::string path_, describe_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  mutable std::mutex mu_;
};

HfTokenizer::HfTokenizer(const std::string& json_path, const std::string& config_path) : path_(json_path) {
  const nlohmann::json doc = parse_json_file(json_path, "the Hugging Face tokenizer");
  const JsonAt root(doc, path_, "");
  root.expect_object();

  const JsonAt model = root["model"];
  model.type_in("model", {"BPE"});
  model_ = std::make_unique<BpeModel>(model);
  if (root.has("normalizer")) normalizer_ = parse_normalizer(root["normalizer"]);
  if (root.has("pre_tokenizer")) pre_ = parse_pre_tokenizer(root["pre_tokenizer"]);
  if (root.has("decoder")) decoder_ = parse_decoder(root["decoder"]);

  if (root.has("added_tokens")) added_ = parse_added_tokens(root["added_tokens"]);
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& a = added_[i];
    const int32_t* vid = model_->vocab().find(a.content);
    if (vid && *vid != a.id)
      root["added_tokens"].at(i).fail("\"" + a.content + "\" has id " + std::to_string(a.id) +
                                      " but model.vocab gives it id " + std::to_string(*vid));
    if (!vid && a.id < static_cast<int32_t>(model_->tokens_by_id().size()) && !model_->tokens_by_id()[a.id].empty())
      root["added_tokens"].at(i).fail("id " + std::to_string(a.id) + " of \"" + a.content +
                                      "\" is model.vocab's id of \"" + model_->tokens_by_id()[a.id] + "\"");
    if (!a.normalized) {
      raw_matcher_.add(a, a.content);
    } else {
      std::string pattern = a.content;
      if (normalizer_) normalizer_->normalize(pattern);
      normalized_matcher_.add(a, pattern);
    }
  }

  // id -> token for decode() and vocab_size().
  id_to_token_ = model_->tokens_by_id();
  has_id_.assign(id_to_token_.size(), false);
  for (size_t i = 0; i < id_to_token_.size(); ++i) has_id_[i] = !id_to_token_[i].empty();
  for (const AddedToken& a : added_) {
    if (static_cast<size_t>(a.id) >= id_to_token_.size()) {
      id_to_token_.resize(a.id + 1);
      has_id_.resize(a.id + 1, false);
    }
    id_to_token_[a.id] = a.content;
    has_id_[a.id] = true;
  }

  // Raw-byte matching behind a final ByteLevel pre-tokenizer (see hf_bpe.h).
  if (pre_) {
    if (ByteLevelPreTokenizer* bl = pre_->final_byte_level())
      if (model_->enable_byte_mode()) bl->set_raw_output(true);
  }

  static const nlohmann::json kNull;
  const JsonAt post = root.has("post_processor") ? root["post_processor"] : JsonAt(kNull, path_, "post_processor");
  special_ = resolve_special_tokens(post, config_path, [this](const std::string& c) { return token_id(c); });

  std::ostringstream d;
  d << path_ << ": BPE" << (model_->byte_mode() ? ", byte-level" : "") << (model_->byte_fallback() ? ", byte-fallback" : "")
    << ", " << vocab_size() << " tokens, " << model_->merges() << " merges, " << added_.size() << " added tokens";
  describe_ = d.str();
}

int32_t HfTokenizer::token_id(const std::string& content) const {
  for (const AddedToken& a : added_)
    if (a.content == content) return a.id;
  const int32_t* id = model_->vocab().find(content);
  return id ? *id : -1;
}

std::vector<int32_t> HfTokenizer::encode(const std::string& text) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string fixed;
  std::string_view s = text;
  // Ill-formed UTF-8 is encoded as U+FFFD per maximal ill-formed sequence, as Python's
  // errors="replace" reads it; load_document_tokens warns naming the data file and the offset.
  if (utf8_first_invalid(text) != text.size()) {
    fixed = utf8_replace_invalid(text);
    s = fixed;
  }
  std::vector<int32_t> out;
  out.reserve(s.size() / 3 + 16);
  auto to_model = [&](std::string_view p, bool) { model_->tokenize(p, out); };
  auto pre_tokenize = [&](std::string_view p, bool at_start) {
    if (pre_) pre_->split(p, at_start, to_model);
    else model_->tokenize(p, out);
  };
  std::string norm;
  auto on_raw_piece = [&](std::string_view p, int32_t id, size_t offset) {
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    std::string_view q = p;
    if (normalizer_) {
      norm.assign(p);
      normalizer_->normalize(norm);
      q = norm;
    }
    if (q.empty()) return;
    const bool at_start = offset == 0;
    if (normalized_matcher_.empty()) return pre_tokenize(q, at_start);
    normalized_matcher_.split(q, [&](std::string_view r, int32_t id2, size_t off2) {
      if (id2 >= 0) out.push_back(id2);
      else pre_tokenize(r, at_start && off2 == 0);
    });
  };
  if (s.empty()) return out;
  if (raw_matcher_.empty()) on_raw_piece(s, -1, 0);
  else raw_matcher_.split(s, on_raw_piece);
  return out;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    QS_CHECK(id >= 0 && static_cast<size_t>(id) < has_id_.size() && has_id_[id],
             path_ << ": cannot decode token id " << id << ": not in the vocabulary");
    tokens.push_back(id_to_token_[id]);
  }
  std::string text;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const auto& t : tokens) text += t;
  } else {  // the Rust library joins undecoded tokens with spaces
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  }
  return text;
}

}  // namespace

std::unique_ptr<TextTokenizer> load_hf_tokenizer(const std::string& json_path, const std::string& config_path) {
  return std::make_unique<HfTokenizer>(json_path, config_path);
}

}  // namespace qsweep
