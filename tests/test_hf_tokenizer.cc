// test_hf_tokenizer.cc — the tokenizer.json reader on small hand-written tokenizers (one feature
// per test: byte-level BPE, merge order, added tokens, Split behaviours, Digits, Metaspace,
// byte_fallback/unk, normalizers, post-processor + tokenizer_config.json, decoders) and on
// malformed files, whose errors must name the file and the JSON path. Token-for-token agreement
// with the Rust library on real tokenizers and texts is tests/e2e/tokenizer_hf.sh's job.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "model/hf_byte_level.h"
#include "model/hf_tokenizer.h"
#include "test_util.h"

namespace qsweep {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

std::string write_file(const std::string& dir, const std::string& name, const std::string& body) {
  const std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << body;
  return p;
}

struct Loaded {
  std::unique_ptr<TextTokenizer> tok;
  std::string dir;
};

Loaded load(const json& tok, const json& config = json()) {
  Loaded l;
  l.dir = test::scratch_dir("hf-tok");
  const std::string tp = write_file(l.dir, "tokenizer.json", tok.dump());
  std::string cp = l.dir + "/tokenizer_config.json";
  if (!config.is_null()) write_file(l.dir, "tokenizer_config.json", config.dump());
  l.tok = load_hf_tokenizer(tp, cp);
  return l;
}

// The error message of loading a tokenizer.json body (and optional config body); "" if none.
std::string load_error(const std::string& tok_body, const std::string& config_body = "") {
  const std::string dir = test::scratch_dir("hf-tok-err");
  const std::string tp = write_file(dir, "tokenizer.json", tok_body);
  const std::string cp = dir + "/tokenizer_config.json";
  if (!config_body.empty()) write_file(dir, "tokenizer_config.json", config_body);
  try {
    load_hf_tokenizer(tp, cp);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A byte-level tokenizer: ids 0..255 are the byte characters (id = byte value), then `extra`
// tokens in order; merges as "a b" strings.
json byte_level(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(static_cast<unsigned char>(b))] = b;
  int id = 256;
  for (const auto& t : extra) vocab[t] = id++;
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

// A character-level tokenizer over `tokens` (id = position) with ignore_merges, so that a
// pre-token that is itself a token comes out whole: the ids show where the pieces were cut.
json char_level(const std::vector<std::string>& tokens, const json& pre) {
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  return json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}, {"ignore_merges", true}}},
              {"pre_tokenizer", pre}};
}

TEST(HfTokenizer, ByteLevelMergesDecodeAndVocabSize) {
  auto l = load(byte_level({"he", "ll", "hell", "\xC4\xA0w", "\xC4\xA0wo"}, {"h e", "l l", "he ll", "\xC4\xA0 w", "\xC4\xA0w o"}));
  // "\xC4\xA0" is the byte-level character of the space.
  EXPECT_EQ(l.tok->encode("hello world"), (Ids{258, 'o', 260, 'r', 'l', 'd'}));
  EXPECT_EQ(l.tok->vocab_size(), 261);
  for (const std::string s : {"hello world", "a\tb\n\n c  ", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80!", " ", "\n"})
    EXPECT_EQ(l.tok->decode(l.tok->encode(s)), s);
  EXPECT_NE(l.tok->describe().find("byte-level"), std::string::npos);
  EXPECT_TRUE(l.tok->special().prefix.empty());
  EXPECT_EQ(l.tok->special().bos_id, -1);
}

TEST(HfTokenizer, MergeRankThenLeftmostAndPairForm) {
  json t = byte_level({"aa", "ab"}, {"a b", "a a"});
  auto l = load(t);
  EXPECT_EQ(l.tok->encode("aab"), (Ids{'a', 257}));  // "a b" has the lower rank
  EXPECT_EQ(l.tok->encode("aaa"), (Ids{256, 'a'}));  // equal ranks: leftmost first
  t["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"a", "a"})});
  auto p = load(t);  // the ["a", "b"] pair form reads the same
  EXPECT_EQ(p.tok->encode("aab"), (Ids{'a', 257}));
  EXPECT_EQ(p.tok->encode("aaa"), (Ids{256, 'a'}));
}

TEST(HfTokenizer, AddedTokensStripAndSingleWord) {
  json t = byte_level({}, {});
  t["added_tokens"] = json::array({
      {{"id", 300}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 301}, {"content", "<L>"}, {"lstrip", true}, {"special", true}, {"normalized", false}},
      {{"id", 302}, {"content", "<R>"}, {"rstrip", true}, {"special", true}, {"normalized", false}},
      {{"id", 303}, {"content", "cat"}, {"single_word", true}, {"normalized", false}},
      {{"id", 304}, {"content", "<s>x"}, {"special", true}, {"normalized", false}},
  });
  auto l = load(t);
  EXPECT_EQ(l.tok->vocab_size(), 305);
  EXPECT_EQ(l.tok->encode("a<s>b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(l.tok->encode("<s>xy"), (Ids{304, 'y'}));  // leftmost-longest
  EXPECT_EQ(l.tok->encode("a  <L>b"), (Ids{'a', 301, 'b'}));
  EXPECT_EQ(l.tok->encode("a<R> \t b"), (Ids{'a', 302, 'b'}));
  EXPECT_EQ(l.tok->encode("cat"), (Ids{303}));
  EXPECT_EQ(l.tok->encode("cats"), (Ids{'c', 'a', 't', 's'}));  // not a single word
  EXPECT_EQ(l.tok->decode({'a', 300, 'b'}), "a<s>b");
}

TEST(HfTokenizer, SplitBehaviours) {
  const std::vector<std::string> toks = {"a", "b", "-", "a-", "-b", "--", "ab", "a--", "--b"};
  auto with = [&](const std::string& behavior, bool invert = false) {
    return load(char_level(toks, {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}}))
        .tok->encode("a--b");
  };
  EXPECT_EQ(with("Isolated"), (Ids{0, 2, 2, 1}));
  EXPECT_EQ(with("Removed"), (Ids{0, 1}));
  EXPECT_EQ(with("MergedWithPrevious"), (Ids{3, 2, 1}));
  EXPECT_EQ(with("MergedWithNext"), (Ids{0, 2, 4}));
  EXPECT_EQ(with("Contiguous"), (Ids{0, 5, 1}));
  EXPECT_EQ(with("Removed", true), (Ids{2, 2}));  // invert: the matches are the text between
  auto re = load(char_level(toks, {{"type", "Split"}, {"pattern", {{"Regex", "-+"}}}, {"behavior", "Isolated"}}));
  EXPECT_EQ(re.tok->encode("a--b"), (Ids{0, 5, 1}));
}

TEST(HfTokenizer, DigitsAndSequence) {
  const std::vector<std::string> toks = {"1", "2", "3", "12", "123", "x", "x1"};
  auto ind = load(char_level(toks, {{"type", "Digits"}, {"individual_digits", true}}));
  EXPECT_EQ(ind.tok->encode("x123"), (Ids{5, 0, 1, 2}));
  auto con = load(char_level(toks, {{"type", "Digits"}, {"individual_digits", false}}));
  EXPECT_EQ(con.tok->encode("x123"), (Ids{5, 4}));
  auto seq = load(char_level(toks, {{"type", "Sequence"}, {"pretokenizers", json::array({
      {{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,2}"}}}, {"behavior", "Isolated"}},
      {{"type", "Digits"}, {"individual_digits", false}}})}}));
  EXPECT_EQ(seq.tok->encode("x123"), (Ids{5, 3, 2}));
}

TEST(HfTokenizer, MetaspacePrependSchemes) {
  const std::string m = "\xE2\x96\x81";  // ▁
  const std::vector<std::string> toks = {m, "a", "b", m + "a", m + "b", "a" + m + "b", m + "a" + m + "b", "<s>"};
  auto make = [&](const std::string& scheme, bool split) {
    json t = char_level(toks, {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", scheme}, {"split", split}});
    t["added_tokens"] = json::array({{{"id", 7}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
    return load(t);
  };
  EXPECT_EQ(make("first", false).tok->encode("a b"), (Ids{6}));
  EXPECT_EQ(make("never", false).tok->encode("a b"), (Ids{5}));
  EXPECT_EQ(make("always", true).tok->encode("a b"), (Ids{3, 4}));
  // "first" prepends only at the start of the input, not after an added token.
  EXPECT_EQ(make("first", true).tok->encode("<s>a b"), (Ids{7, 1, 4}));
  EXPECT_EQ(make("always", true).tok->encode("<s>a b"), (Ids{7, 3, 4}));
}

TEST(HfTokenizer, ByteFallbackUnkAndMetaspaceDecoder) {
  const std::string m = "\xE2\x96\x81";
  json vocab = {{"<unk>", 0}, {m, 1}, {"h", 2}, {"i", 3}, {m + "h", 4}, {m + "hi", 5}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (b != 0x80) vocab[name] = 6 + b;  // <0x80> missing: that byte cannot fall back
  }
  json t = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {m + " h", m + "h i"}}, {"byte_fallback", true},
                       {"unk_token", "<unk>"}, {"fuse_unk", true}}},
            {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"}, {"split", false}}},
            {"decoder", {{"type", "Sequence"}, {"decoders", json::array({
                {{"type", "Replace"}, {"pattern", {{"String", m}}}, {"content", " "}},
                {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}}};
  auto l = load(t);
  // é = C3 A9 falls back to bytes; U+0800 (E0 A0 80) cannot (no <0x80>) and becomes <unk>.
  EXPECT_EQ(l.tok->encode("hi\xC3\xA9"), (Ids{5, 6 + 0xC3, 6 + 0xA9}));
  EXPECT_EQ(l.tok->encode("h\xE0\xA0\x80\xE0\xA0\x80"), (Ids{4, 0}));  // fused unk
  EXPECT_EQ(l.tok->decode(l.tok->encode("hi\xC3\xA9 hi")), "hi\xC3\xA9 hi");
  EXPECT_NE(l.tok->describe().find("byte-fallback"), std::string::npos);
}

TEST(HfTokenizer, NormalizersAndNormalizedAddedTokens) {
  const std::string m = "\xE2\x96\x81";
  const std::vector<std::string> toks = {m, "a", "b", "\xC3\xA9", "fi", "<x>", m + "a", "e", "f", "i"};
  json t = char_level(toks, nullptr);
  t["model"]["ignore_merges"] = false;
  t["model"]["merges"] = {"f i"};
  t["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({
      {{"type", "NFKC"}}, {{"type", "Prepend"}, {"prepend", m}},
      {{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", m}}})}};
  t["added_tokens"] = json::array({{{"id", 5}, {"content", "<x>"}, {"normalized", true}}});
  auto l = load(t);
  // NFKC: U+FB01 ﬁ -> "fi", e + U+0301 -> é; Prepend; runs of spaces -> one ▁.
  EXPECT_EQ(l.tok->encode("\xEF\xAC\x81"), (Ids{0, 4}));
  EXPECT_EQ(l.tok->encode("e\xCC\x81  a"), (Ids{0, 3, 0, 1}));
  // A normalized added token is matched as its normalized form ("▁<x>" after Prepend), which
  // then covers the whole normalized text "▁<x>".
  EXPECT_EQ(l.tok->encode("<x>"), (Ids{5}));
  EXPECT_EQ(l.tok->encode("a<x>"), (Ids{0, 1}));  // "▁a<x>": no "▁<x>" in it; <, x, > are not tokens (no unk: dropped)
}

TEST(HfTokenizer, PostProcessorAndTokenizerConfig) {
  json t = byte_level({}, {});
  t["added_tokens"] = json::array({{{"id", 256}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                                   {{"id", 257}, {"content", "</s>"}, {"special", true}, {"normalized", false}}});
  t["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                 {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {256}}, {"tokens", {"<s>"}}}},
                                             {"</s>", {{"id", "</s>"}, {"ids", {257}}, {"tokens", {"</s>"}}}}}}};
  auto a = load(t);
  EXPECT_EQ(a.tok->special().prefix, (Ids{256}));
  EXPECT_EQ(a.tok->special().suffix, (Ids{257}));
  EXPECT_EQ(a.tok->special().bos_id, 256);
  EXPECT_TRUE(a.tok->special().adds_bos);
  EXPECT_EQ(a.tok->encode("x"), (Ids{'x'}));  // encode() never adds them
  auto b = load(t, {{"add_bos_token", false}, {"add_eos_token", false}, {"bos_token", "<s>"}});
  EXPECT_TRUE(b.tok->special().prefix.empty());
  EXPECT_TRUE(b.tok->special().suffix.empty());
  EXPECT_EQ(b.tok->special().bos_id, 256);
  EXPECT_FALSE(b.tok->special().adds_bos);
  t["post_processor"] = {{"type", "ByteLevel"}};
  auto c = load(t, {{"add_bos_token", true}, {"bos_token", {{"content", "<s>"}, {"__type", "AddedToken"}}}});
  EXPECT_EQ(c.tok->special().prefix, (Ids{256}));
  EXPECT_TRUE(c.tok->special().adds_bos);
}

TEST(HfTokenizer, InvalidUtf8IsReplaced) {
  json t = byte_level({}, {});
  auto l = load(t);
  EXPECT_EQ(l.tok->encode("a\xFF" "b"), l.tok->encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(l.tok->encode("\xE2\x82"), l.tok->encode("\xEF\xBF\xBD"));  // truncated sequence: one U+FFFD
  EXPECT_TRUE(l.tok->encode("").empty());
}

TEST(HfTokenizer, SmolLM2RoundTrip) {
  std::string dir = test::path_exists(test::qsweep_binary())
                        ? test::qsweep_binary().substr(0, test::qsweep_binary().rfind('/')) + "/models/smollm2"
                        : "";
  if (!test::path_exists(dir + "/tokenizer.json")) dir = test::source_dir() + "/build/models/smollm2";
  if (!test::path_exists(dir + "/tokenizer.json")) GTEST_SKIP() << "no SmolLM2 folder (../shared/models/smollm2/make.sh)";
  auto tok = load_hf_tokenizer(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_FALSE(tok->special().adds_bos);
  EXPECT_EQ(tok->special().bos_id, 1);
  for (const std::string& p : {test::source_dir() + "/tests/fixtures/tokenizer_mixed.txt", test::demo_test_text()}) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(tok->decode(tok->encode(ss.str())), ss.str()) << p;
  }
  EXPECT_EQ(tok->encode("<|endoftext|>"), (Ids{0}));
}

// ---- malformed files: each error names the file and the JSON path ----------------------------

struct BadCase {
  const char* name;
  std::string tokenizer, config;
  std::vector<std::string> needles;
};

TEST(HfTokenizer, ErrorsNameFileAndPath) {
  const json ok = byte_level({"ab"}, {"a b"});
  auto mod = [&](auto f) {
    json t = ok;
    f(t);
    return t.dump();
  };
  const std::vector<BadCase> cases = {
      {"syntax", "{\"model\": {\"type\": \"BPE\",, }}", "", {"tokenizer.json", "not valid JSON at byte 26"}},
      {"no model", "{}", "", {"tokenizer.json", "model: missing"}},
      {"wordpiece", mod([](json& t) { t["model"]["type"] = "WordPiece"; }), "",
       {"model.type", "\"WordPiece\" is not supported", "BPE"}},
      {"unknown pre-tokenizer",
       mod([](json& t) { t["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "Digits"}}, {{"type", "Whitespace"}}})}}; }),
       "", {"tokenizer.json", "pre_tokenizer.pretokenizers[1].type", "\"Whitespace\" is not supported", "Metaspace"}},
      {"unknown normalizer", mod([](json& t) { t["normalizer"] = {{"type", "Lowercase"}}; }), "",
       {"normalizer.type", "\"Lowercase\""}},
      {"unknown post-processor", mod([](json& t) { t["post_processor"] = {{"type", "BertProcessing"}}; }), "",
       {"post_processor.type", "\"BertProcessing\""}},
      {"bad split behaviour",
       mod([](json& t) { t["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Weird"}}; }),
       "", {"pre_tokenizer.behavior", "\"Weird\" is not supported"}},
      {"bad regex",
       mod([](json& t) { t["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}}; }),
       "", {"pre_tokenizer.pattern.Regex", "cannot compile"}},
      {"merge not in vocab", mod([](json& t) { t["model"]["merges"].push_back("a zz"); }), "",
       {"model.merges[1]", "\"zz\" is not in model.vocab"}},
      {"merge bad form", mod([](json& t) { t["model"]["merges"].push_back("abc"); }), "",
       {"model.merges[1]", "two tokens"}},
      {"duplicate id", mod([](json& t) { t["model"]["vocab"]["zz"] = 5; }), "", {"model.vocab", "id 5 is given to both"}},
      {"negative id", mod([](json& t) { t["model"]["vocab"]["zz"] = -1; }), "", {"model.vocab[\"zz\"]", "out of range"}},
      {"id not integer", mod([](json& t) { t["model"]["vocab"]["zz"] = "7"; }), "", {"model.vocab[\"zz\"]", "expected an integer"}},
      {"added token id clash",
       mod([](json& t) { t["added_tokens"] = json::array({{{"id", 3}, {"content", "<s>"}}}); }), "",
       {"added_tokens[0]", "id 3"}},
      {"added token missing content", mod([](json& t) { t["added_tokens"] = json::array({{{"id", 300}}}); }), "",
       {"added_tokens[0].content: missing"}},
      {"template unknown special",
       mod([](json& t) {
         t["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
                                {"special_tokens", json::object()}};
       }),
       "", {"post_processor.single[0]", "\"<s>\" is not in post_processor.special_tokens"}},
      {"dropout", mod([](json& t) { t["model"]["dropout"] = 0.1; }), "", {"model.dropout", "not supported"}},
      {"config syntax", ok.dump(), "{\"add_bos_token\": tru}", {"tokenizer_config.json", "not valid JSON at byte"}},
      {"config add_bos without bos", ok.dump(), "{\"add_bos_token\": true}",
       {"tokenizer_config.json", "add_bos_token: is true but bos_token is missing"}},
      {"config bos unknown", ok.dump(), "{\"bos_token\": \"<nope>\"}",
       {"tokenizer_config.json", "bos_token", "\"<nope>\" is not a token"}},
      {"config add_bos not bool", ok.dump(), "{\"add_bos_token\": \"yes\", \"bos_token\": \"a\"}",
       {"tokenizer_config.json", "add_bos_token: expected true or false"}},
      {"config bos bad type", ok.dump(), "{\"bos_token\": 5}", {"tokenizer_config.json", "bos_token: expected a string or an object"}},
  };
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string err = load_error(c.tokenizer, c.config);
    EXPECT_FALSE(err.empty()) << c.name << ": loaded without error";
    for (const auto& n : c.needles) EXPECT_NE(err.find(n), std::string::npos) << c.name << ": '" << err << "' lacks '" << n << "'";
  }
}

TEST(HfTokenizer, DecodeUnknownIdThrows) {
  auto l = load(byte_level({}, {}));
  EXPECT_THROW(l.tok->decode({999}), Error);
}

}  // namespace
}  // namespace qsweep
