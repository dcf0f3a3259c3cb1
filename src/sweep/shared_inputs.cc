// shared_inputs.cc — the sweep's shared inputs (see shared_inputs.h).
#include "sweep/shared_inputs.h"

#include <sys/stat.h>

#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

const std::vector<int32_t>& SharedInputs::document(const std::string& path, bool strip_newline) {
  auto key = std::make_pair(path, strip_newline);
  auto it = docs_.find(key);
  if (it != docs_.end()) return it->second;
  Timer t;
  auto stamp = [](const std::string& f) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) return std::string("?");
    return std::to_string(st.st_size) + "@" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  };
  std::string key_text = path + "\n" + stamp(path);
  for (const std::string& f : tokenizer_files(plan_.model)) key_text += "\n" + f + "\n" + stamp(f);
  const std::string cache = out_ + "/shared/tokens-" + fnv1a_hex(key_text + (strip_newline ? "\nstrip" : ""), 12) + ".ids";
  const int vocab = model_.config().vocab_size;
  std::vector<int32_t>& d = docs_[key];
  if (file_exists(cache)) {
    d = load_document_tokens(cache, plan_.model, vocab, {});
    log_info("%s: %zu tokens from %s (%.2f s)", path.c_str(), d.size(), cache.c_str(), t.seconds());
  } else {
    DocumentOptions o;
    o.strip_one_trailing_newline = strip_newline;
    o.write_cache = world_.rank() == 0;
    d = load_document_tokens(path, plan_.model, vocab, o);
    if (world_.rank() == 0 && !dry_run_) {
      std::string text = std::string(kTokenIdsHeader) + "\n";
      for (size_t i = 0; i < d.size(); ++i) text += std::to_string(d[i]) + (i % 32 == 31 || i + 1 == d.size() ? "\n" : " ");
      write_text_atomic(cache, text);
    }
    log_info("tokenized %s: %zu tokens (%.2f s; kept in %s for every cell and resume)", path.c_str(), d.size(),
             t.seconds(), cache.c_str());
  }
  QS_CHECK(!d.empty(), path << ": the text is empty");
  return d;
}

const SpecialTokens& SharedInputs::special() {
  if (!special_) special_ = model_special_tokens(plan_.model, model_.config().bos_token_id);
  return *special_;
}

const EvalWindows& SharedInputs::windows(const EvalArgs& a, size_t file) {
  QS_ASSERT(file < plan_.eval_files.size(), "evaluation file index");
  const std::string key = a.protocol + "/" + std::to_string(a.ctx) + "/" + std::to_string(file);
  auto it = windows_.find(key);
  if (it != windows_.end()) return it->second;
  const Protocol p = parse_protocol(a.protocol);
  const std::string& path = plan_.eval_files[file];
  return windows_[key] = make_windows(p, document(path, p == Protocol::LlamaCpp), special(), a.ctx, path);
}

const CalibWindows& SharedInputs::calib(const QuantizeArgs& q) {
  const std::string key = std::to_string(q.n_calib) + "/" + std::to_string(q.seq_len) + "/" + std::to_string(q.seed);
  auto it = calib_.find(key);
  if (it != calib_.end()) return it->second;
  return calib_[key] = sample_calib_windows(document(plan_.calib, false), special().prefix,
                                            q.n_calib, q.seq_len, q.seed, plan_.calib);
}

const std::vector<Task>& SharedInputs::tasks(size_t file) {
  QS_ASSERT(file < plan_.task_files.size(), "task file index");
  auto it = tasks_.find(file);
  if (it != tasks_.end()) return it->second;
  return tasks_[file] = read_task_file(plan_.task_files[file], parse_task_format(plan_.tasks_format));
}

const TaskSequences& SharedInputs::task_sequences(const EvalArgs& a, size_t file) {
  const std::string key = std::to_string(a.ctx) + "/" + std::to_string(file);
  auto it = task_seqs_.find(key);
  if (it != task_seqs_.end()) return it->second;
  if (!tokenizer_) tokenizer_ = load_model_tokenizer(plan_.model);
  QS_CHECK(tokenizer_, plan_.model << ": tasks need the model's tokenizer (tokenizer.json or tokenizer.model), found none");
  const std::string& path = plan_.task_files[file];
  TaskSequences s = make_task_sequences(path, tasks(file), *tokenizer_, a.ctx);
  if (!s.too_long.empty())
    log_warn("tasks %s: %zu task(s) longer than ctx %d tokens are not scored", path.c_str(), s.too_long.size(), a.ctx);
  QS_CHECK(!s.scored.empty(), path << ": every task is longer than ctx " << a.ctx << " tokens: nothing to score (raise ctx)");
  return task_seqs_[key] = std::move(s);
}

BlockStatsCache* SharedInputs::stats_cache(const QuantizeArgs& q) {
  if (!q.no_propagate || q.lm_head) return nullptr;
  const ModelConfig& cfg = model_.config();
  const double H = cfg.hidden_size, I = cfg.intermediate_size, Q = cfg.q_dim();
  const double per_block = 8.0 * (2 * H * H + Q * Q + I * I);  // the four inputs' Σxxᵀ in fp64
  if (per_block * cfg.num_hidden_layers > stats_cache_mb_ * 1048576.0) {
    if (!cache_warned_) log_warn("--no-propagate cells compute their own statistics: the shared copy would need %.0f MB (--stats-cache-mb %lld)",
                                 per_block * cfg.num_hidden_layers / 1048576.0, static_cast<long long>(stats_cache_mb_));
    cache_warned_ = true;
    return nullptr;
  }
  char key[160];
  std::snprintf(key, sizeof(key), "%d/%d/%llu/%d/%.17g", q.n_calib, q.seq_len, static_cast<unsigned long long>(q.seed),
                q.opt.calib_chunk, q.opt.sparsity_threshold);
  auto& slot = stats_caches_[key];
  if (!slot) slot = std::make_unique<BlockStatsCache>(cfg.num_hidden_layers);
  return slot.get();
}

}  // namespace qsweep
