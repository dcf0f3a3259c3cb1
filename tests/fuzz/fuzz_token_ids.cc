// fuzz_token_ids.cc — libFuzzer target: the pre-tokenized document reader (load_document_tokens
// on a "#qsweep-token-ids v1" file), for a small and the largest vocabulary, with and without
// the trailing-newline option. The model folder has no tokenizer, so a body that is not
// pre-tokenized must end in the error that explains the format. Every id returned must lie in
// [0, vocab_size): the evaluation indexes the embedding with it.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  const std::string path =
      fuzz::write_scratch("data.txt", std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string model_dir = fuzz::scratch_dir();  // no tokenizer.json, no tokenizer.model
  for (const int vocab : {32000, 2147483647}) {
    fuzz::expect_only_qsweep_errors([&] {
      DocumentOptions opt;
      opt.strip_one_trailing_newline = vocab != 32000;
      for (int32_t id : load_document_tokens(path, model_dir, vocab, opt))
        if (id < 0 || id >= vocab)
          fuzz::finding("load_document_tokens returned id " + std::to_string(id) + " outside [0, " +
                        std::to_string(vocab) + ")");
    });
  }
  return 0;
}
