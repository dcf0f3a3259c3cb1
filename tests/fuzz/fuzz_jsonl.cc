// fuzz_jsonl.cc — libFuzzer target: JSON Lines evaluation data (jsonl_documents_text, and
// load_document_tokens on a *.jsonl file in a folder without a tokenizer, which must end in the
// error that explains the pre-tokenized format once the documents are read). Every failure must
// be a qsweep::Error; the joined text must hold every document's text in order.
#include <cstdint>
#include <string>

#include "eval/eval_data.h"
#include "fuzz_util.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  const std::string body(reinterpret_cast<const char*>(data), size);
  const std::string path = fuzz::write_scratch("data.jsonl", body);
  fuzz::expect_only_qsweep_errors([&] {
    const std::string text = jsonl_documents_text(path, body);
    if (text.size() > 2 * body.size() + 16)  // JSON escapes only shrink; "\n\n" joins add 2 per line
      fuzz::finding("jsonl_documents_text returned " + std::to_string(text.size()) + " bytes from " +
                    std::to_string(body.size()));
  });
  fuzz::expect_only_qsweep_errors([&] { load_document_tokens(path, fuzz::scratch_dir(), 32000, {}); });
  return 0;
}
