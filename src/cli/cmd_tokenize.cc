// cmd_tokenize.cc — `qsweep tokenize`: writes a text's token ids in the pre-tokenized format
// ("#qsweep-token-ids v1" then the ids of the text alone: no BOS, no post-processor tokens), with
// the model folder's own tokenizer (tokenizer.json before tokenizer.model), to inspect
// tokenization or to feed other tools.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "model/config.h"
#include "model/tokenizer.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_tokenize(const CommandContext& ctx) {
  std::string model_dir, data, out;
  bool strip = false;
  po::options_description desc("qsweep tokenize options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory (its tokenizer.json, else tokenizer.model)")
      ("data", po::value(&data)->required(), "text file (any non-empty text, even a single space)")
      ("output", po::value(&out)->required(), "file to write (pre-tokenized format)")
      ("strip-trailing-newline", po::bool_switch(&strip), "drop one trailing newline first (as --protocol llamacpp does)");
  po::variables_map vm;
  if (!parse_args("tokenize", "qsweep tokenize --model DIR --data FILE --output FILE", desc, ctx.args, vm))
    return 0;
  if (ctx.comm.rank() != 0) return 0;
  const ModelConfig cfg = ModelConfig::from_file(model_dir + "/config.json");
  DocumentOptions o;
  o.strip_one_trailing_newline = strip;
  Timer t;
  const auto ids = load_document_tokens(data, model_dir, cfg.vocab_size, o);
  log_info("tokenized %s: %zu ids in %.3f s (reading, tokenizer loading and encoding)", data.c_str(), ids.size(),
           t.seconds());
  FILE* f = std::fopen(out.c_str(), "w");
  QS_CHECK(f, out << ": cannot create");
  std::fprintf(f, "%s\n", kTokenIdsHeader);
  for (size_t i = 0; i < ids.size(); ++i) std::fprintf(f, "%d%c", ids[i], (i % 32 == 31 || i + 1 == ids.size()) ? '\n' : ' ');
  QS_CHECK(std::fclose(f) == 0, out << ": write failed");
  std::printf("tokens: %zu\n", ids.size());
  return 0;
}

}  // namespace qsweep
