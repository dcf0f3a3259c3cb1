// fuzz_hf_tokenizer.cc — libFuzzer target: tokenizer.json and tokenizer_config.json through
// load_hf_tokenizer, then encoding and decoding a short text with what was loaded.
//
// Input: tokenizer.json [NUL tokenizer_config.json [NUL text]]. Without a config part, or with
// an empty one, there is no tokenizer_config.json; without a text part a few fixed texts are encoded. The text is made
// valid UTF-8 first (encode would do the same, with a warning per call that floods the log).
// Beyond "only qsweep::Error", two invariants are checked: every id encode() returns lies in
// [0, vocab_size()) (the evaluation indexes the embedding with them), and decode() takes them
// back without an error.
#include <cstdint>
#include <string>
#include <vector>

#include "core/utf8.h"
#include "fuzz_util.h"
#include "model/hf_tokenizer.h"

namespace {
const char* const kTexts[] = {
    "Hello world! It's 2024, isn't it?",
    "  leading  and trailing spaces \t\n\n",
    "caf\xC3\xA9 na\xC3\xAFve \xE2\x96\x81 \xE4\xBD\xA0\xE5\xA5\xBD <s> </s> <|endoftext|> 12345",
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  const auto parts = fuzz::split_parts(data, size, 3);
  const std::string json_path = fuzz::write_scratch("tokenizer.json", parts[0]);
  const std::string config_path = fuzz::scratch_dir() + "/tokenizer_config.json";
  if (parts.size() >= 2 && !parts[1].empty())
    fuzz::write_scratch("tokenizer_config.json", parts[1]);
  else
    fuzz::remove_scratch("tokenizer_config.json");
  std::vector<std::string> texts;
  if (parts.size() >= 3) {
    if (parts[2].size() <= 4096) texts.push_back(utf8_replace_invalid(parts[2]));
  } else {
    texts.assign(std::begin(kTexts), std::end(kTexts));
  }

  fuzz::expect_only_qsweep_errors([&] {
    const auto tok = load_hf_tokenizer(json_path, config_path);
    (void)tok->describe();
    const SpecialTokens& sp = tok->special();
    if (sp.adds_bos && sp.bos_id < 0) fuzz::finding("adds_bos without a bos_id");
    for (const std::string& text : texts) {
      const std::vector<int32_t> ids = tok->encode(text);
      for (int32_t id : ids)
        if (id < 0 || id >= tok->vocab_size())
          fuzz::finding("encode() returned id " + std::to_string(id) + " outside [0, " +
                        std::to_string(tok->vocab_size()) + ")");
      try {
        (void)tok->decode(ids);
      } catch (const Error& e) {
        fuzz::finding(std::string("decode() rejected the ids encode() returned: ") + e.what());
      }
    }
  });
  return 0;
}
