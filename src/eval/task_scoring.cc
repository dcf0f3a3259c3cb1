// task_scoring.cc — the multiple-choice forward loop and the accuracies (see task_scoring.h).
#include "eval/task_scoring.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/device_comm.h"
#include "eval/non_finite.h"
#include "io/quant_store.h"
#include "model/forward.h"

namespace qsweep {

namespace {

struct SeqBatch {
  int64_t first = 0, count = 0;  // into the length-sorted order
  int len = 0;                   // padded length: the longest sequence of the batch
};

double accuracy_se(double p, int64_t n) { return n > 1 ? std::sqrt(p * (1 - p) / static_cast<double>(n - 1)) : 0.0; }

// Index of the largest value; ties go to the lowest index (llama.cpp's strict '>').
int argmax(const double* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

}  // namespace

double poisson_binomial_upper_tail(const std::vector<double>& p, int64_t k) {
  if (k <= 0) return 1.0;
  if (k > static_cast<int64_t>(p.size())) return 0.0;
  std::vector<double> dist(p.size() + 1, 0.0);  // dist[j] = P(j successes so far)
  dist[0] = 1.0;
  for (size_t i = 0; i < p.size(); ++i) {
    for (size_t j = i + 1; j >= 1; --j) dist[j] = dist[j] * (1 - p[i]) + dist[j - 1] * p[i];
    dist[0] *= 1 - p[i];
  }
  double tail = 0;
  for (size_t j = static_cast<size_t>(k); j < dist.size(); ++j) tail += dist[j];
  return std::min(1.0, tail);
}

namespace {

// One task as one packed sequence: the choices' common prefix once, then each choice's own tokens
// as a branch that sees the prefix and itself (positions restart at the prefix's end).
struct PackedTask {
  std::vector<int32_t> tokens, positions, prefix_end, branch_begin;
  std::vector<int> seq;          // the task's choices: indices into TaskSequences::seqs
  std::vector<int> start;        // where each choice's branch starts in `tokens`
  int prefix = 0;
  // The row that predicts token p of choice k.
  int row(int k, int p) const {
    const int q = p - 1;
    return q < prefix ? q : start[k] + (q - prefix);
  }
};

std::vector<PackedTask> pack_tasks(const TaskSequences& ts) {
  std::vector<PackedTask> out;
  for (size_t i = 0; i < ts.seqs.size();) {
    PackedTask t;
    const int task = ts.seqs[i].task;
    t.prefix = ts.seqs[i].common_begin;  // the same for all the task's choices, at least 1
    const std::vector<int32_t>& first = ts.seqs[i].tokens;
    t.tokens.assign(first.begin(), first.begin() + t.prefix);
    for (int p = 0; p < t.prefix; ++p) {
      t.positions.push_back(p);
      t.prefix_end.push_back(0);
      t.branch_begin.push_back(0);
    }
    for (; i < ts.seqs.size() && ts.seqs[i].task == task; ++i) {
      const ChoiceSeq& s = ts.seqs[i];
      t.seq.push_back(static_cast<int>(i));
      t.start.push_back(static_cast<int>(t.tokens.size()));
      const int b = static_cast<int>(t.tokens.size());
      for (int p = t.prefix; p < static_cast<int>(s.tokens.size()); ++p) {
        t.tokens.push_back(s.tokens[p]);
        t.positions.push_back(p);
        t.prefix_end.push_back(t.prefix);
        t.branch_begin.push_back(b);
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

TaskResult score_tasks(const LlamaWeights& model, const std::vector<Task>& tasks, const TaskSequences& ts, int ctx,
                       const Comm& comm, const EvalOptions& opt) {
  const ModelConfig& cfg = model.config();
  const int H = cfg.hidden_size;
  const int64_t n_seq = static_cast<int64_t>(ts.seqs.size());
  TaskResult r;
  r.too_long = ts.too_long;
  const std::vector<PackedTask> packed = pack_tasks(ts);
  const int64_t n_units = static_cast<int64_t>(packed.size());

  // Longest first; fixed batches of at most batch × ctx tokens (one task at least).
  std::vector<int64_t> order(n_units);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return packed[a].tokens.size() > packed[b].tokens.size(); });
  const int64_t batch_tokens = static_cast<int64_t>(eval_batch_windows(opt.batch, ctx)) * ctx;
  std::vector<SeqBatch> batches;
  for (int64_t i = 0; i < n_units;) {
    SeqBatch b;
    b.first = i;
    b.len = static_cast<int>(packed[order[i]].tokens.size());
    b.count = std::min<int64_t>(n_units - i, std::max<int64_t>(1, batch_tokens / b.len));
    i += b.count;
    batches.push_back(b);
  }
  const int64_t nb = static_cast<int64_t>(batches.size());
  int64_t b_begin = 0, b_end = 0;
  block_range(nb, comm.rank(), comm.size(), &b_begin, &b_end);
  // Chunks: consecutive batches whose activations fit the budget (at least one batch); on a GPU
  // the chunk stays there for all its blocks and the budget applies per device.
  const int64_t budget = device_budget_share(comm, opt.activation_budget);
  std::vector<int64_t> chunk_starts;
  for (int64_t b = b_begin, bytes = 0; b < b_end; ++b) {
    const int64_t bb = batches[b].count * batches[b].len * H * 4;
    if (chunk_starts.empty() || bytes + bb > budget) {
      chunk_starts.push_back(b);
      bytes = 0;
    }
    bytes += bb;
  }
  chunk_starts.push_back(b_end);
  const int64_t my_chunks = static_cast<int64_t>(chunk_starts.size()) - 1;
  const int64_t max_chunks = static_cast<int64_t>(comm.allreduce_max(static_cast<double>(my_chunks)));

  std::unique_ptr<LlamaForward> fwd_ptr = make_forward(cfg);  // on this process's device
  LlamaForward& fwd = *fwd_ptr;
  HeadWeights head = HeadWeights::load(model);
  if (opt.quantized && opt.quantized->has_lm_head())
    opt.quantized->apply_lm_head(head.lm_head, cfg.vocab_size, cfg.hidden_size);
  fwd.hold(head);

  std::string pending;
  int64_t polls = 0;
  auto poll = [&] {
    ++polls;
    comm.agree_or_throw(pending);
    if (opt.should_stop && opt.should_stop(comm)) throw Interrupted();
  };
  Progress progress("tasks", static_cast<long>(my_chunks * (cfg.num_hidden_layers + 1)), "steps (chunk x block)");
  int64_t step = 0;
  double fwd_s = 0, tokens_done = 0;
  // Per choice of my batches' tasks, in sorted task order: sum_ctx, n_ctx, sum_cp, n_cp.
  std::vector<double> mine;
  std::vector<float> x;
  std::vector<int32_t> ids, pos, pend, bbeg;
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  std::vector<double> nll;
  for (int64_t ci = 0; ci < my_chunks; ++ci) {
    const int64_t cb = chunk_starts[ci], ce = chunk_starts[ci + 1];
    std::vector<int64_t> offset;  // a batch's first row in x
    int64_t n_tok = 0;
    for (int64_t b = cb; b < ce; ++b) {
      offset.push_back(n_tok);
      n_tok += batches[b].count * batches[b].len;
    }
    ids.assign(n_tok, 0);
    pos.assign(n_tok, 0);
    pend.assign(n_tok, 0);
    bbeg.assign(n_tok, 0);
    for (int64_t b = cb; b < ce; ++b)
      for (int64_t k = 0; k < batches[b].count; ++k) {
        const PackedTask& t = packed[order[batches[b].first + k]];
        const int64_t o = offset[b - cb] + k * batches[b].len, n = static_cast<int64_t>(t.tokens.size());
        std::copy(t.tokens.begin(), t.tokens.end(), ids.begin() + o);
        std::copy(t.positions.begin(), t.positions.end(), pos.begin() + o);
        std::copy(t.prefix_end.begin(), t.prefix_end.end(), pend.begin() + o);
        std::copy(t.branch_begin.begin(), t.branch_begin.end(), bbeg.begin() + o);
        for (int64_t p = n; p < batches[b].len; ++p) {  // padding after the end: sees everything before it
          ids[o + p] = t.tokens.back();
          pos[o + p] = static_cast<int32_t>(p);
        }
      }
    x.resize(static_cast<size_t>(n_tok) * H);
    Timer t;
    model.embed(ids.data(), n_tok, x.data());
    try {  // on a GPU the chunk's hidden states stay there for all its blocks (the chunk fits the budget)
      fwd.hold_activations(x.data(), static_cast<int64_t>(x.size()));
    } catch (const Error& e) {  // agreed at the next poll
      pending = e.what();
    }
    std::unique_ptr<BlockWeights> bw;  // the previous block's storage is reused (load_block)
    for (int l = 0; l < cfg.num_hidden_layers; ++l) {
      poll();
      bw = model.load_block(l, std::move(bw));
      if (opt.quantized) opt.quantized->apply(*bw);
      fwd.hold(*bw);
      for (int64_t b = cb; b < ce && pending.empty(); ++b) {
        const int64_t o = offset[b - cb];
        float* xb = x.data() + o * H;
        const int ns = static_cast<int>(batches[b].count), len = batches[b].len;
        const SeqPacking pk{pos.data() + o, pend.data() + o, bbeg.data() + o};
        try {  // the block, then the non-finite guard on its output (on a GPU: scanned there)
          pending = fwd.run_block_guarded(*bw, xb, ns, len, [&](const float* in, const float* out) {
            return check_block_output(opt.quantized ? "tasks (quantized model)" : "tasks", fwd, *bw, l, in, out, ns, len, H);
          }, nullptr, &pk);
        } catch (const Error& e) {  // a device error on this rank: agreed at the next poll
          pending = e.what();
        }
      }
      if (opt.progress) progress.update(static_cast<long>(++step), tokens_done + double(n_tok) * (l + 1) / cfg.num_hidden_layers);
    }
    try {  // the chunk's final hidden states back on the host for the head
      fwd.release_activations(x.data());
    } catch (const Error& e) {
      if (pending.empty()) pending = e.what();
    }
    // Head: log p of every scored token, one batch at a time (the same grouping on any rank count).
    for (int64_t b = cb; b < ce && pending.empty(); ++b) try {
      rows.clear();
      targets.clear();
      for (int64_t k = 0; k < batches[b].count; ++k) {
        const PackedTask& pt = packed[order[batches[b].first + k]];
        const int64_t o = offset[b - cb] + k * batches[b].len;
        for (size_t c = 0; c < pt.seq.size(); ++c) {
          const ChoiceSeq& s = ts.seqs[pt.seq[c]];
          for (int p = s.first_scored(); p < static_cast<int>(s.tokens.size()); ++p) {
            rows.push_back(o + pt.row(static_cast<int>(c), p));
            targets.push_back(s.tokens[p]);
          }
        }
      }
      nll.resize(rows.size());
      fwd.head_nll(head, x.data(), rows.data(), targets.data(), static_cast<int64_t>(rows.size()), nll.data());
      size_t i = 0;
      for (int64_t k = 0; k < batches[b].count; ++k) {
        const PackedTask& pt = packed[order[batches[b].first + k]];
        for (size_t c = 0; c < pt.seq.size(); ++c) {
          const ChoiceSeq& s = ts.seqs[pt.seq[c]];
          double sum_ctx = 0, sum_cp = 0;
          for (int p = s.first_scored(); p < static_cast<int>(s.tokens.size()); ++p, ++i) {
            if (p >= s.choice_begin) sum_ctx -= nll[i];
            if (p >= s.common_begin) sum_cp -= nll[i];
          }
          if (pending.empty() && !(std::isfinite(sum_ctx) && std::isfinite(sum_cp)))
            pending = "tasks: non-finite log-probability of task " + tasks[s.task].id + " choice " + std::to_string(s.choice);
          mine.insert(mine.end(), {sum_ctx, double(s.tokens.size() - s.choice_begin), sum_cp,
                                   double(s.tokens.size() - s.common_begin)});
        }
      }
    } catch (const Error& e) {
      pending = e.what();
    }
    fwd_s += t.seconds();
    tokens_done += double(n_tok);
    r.tokens_processed += n_tok;
    if (opt.progress) progress.update(static_cast<long>(++step), tokens_done);
  }
  while (polls < max_chunks * cfg.num_hidden_layers) poll();
  comm.agree_or_throw(pending);
  if (opt.progress && comm.rank() == 0) progress.finish(tokens_done);

  const std::vector<double> all = comm.allgatherv(mine);
  QS_ASSERT(static_cast<int64_t>(all.size()) == 4 * n_seq, "gathered task sequences");
  std::vector<double> per_seq(4 * n_seq);
  for (int64_t i = 0, j = 0; i < n_units; ++i)
    for (int sq : packed[order[i]].seq) {
      std::copy(all.begin() + 4 * j, all.begin() + 4 * j + 4, per_seq.begin() + 4 * sq);
      ++j;
    }
  std::vector<double> tok_counts = comm.allgatherv(std::vector<double>{double(r.tokens_processed)});
  r.tokens_processed = 0;
  for (double v : tok_counts) r.tokens_processed += static_cast<int64_t>(v);
  r.forward_seconds = comm.allreduce_max(fwd_s);

  // Accuracies, task by task (sequences are stored task by task, choices in order).
  int64_t correct[3] = {0, 0, 0};
  std::vector<double> p_guess;
  std::vector<double> by_sum, by_norm, by_cp;
  int64_t s0 = 0;
  for (size_t k = 0; k < ts.scored.size(); ++k) {
    const Task& task = tasks[ts.scored[k]];
    const int nc = ts.n_choices[k];
    by_sum.resize(nc);
    by_norm.resize(nc);
    by_cp.resize(nc);
    r.choice_offset.push_back(s0);
    for (int c = 0; c < nc; ++c) {
      const double* v = per_seq.data() + 4 * (s0 + c);
      const ChoiceSeq& s = ts.seqs[s0 + c];
      by_sum[c] = v[0];
      by_norm[c] = v[0] / static_cast<double>(s.n_chars);
      by_cp[c] = v[2] / v[3];
      r.choice_logprob.push_back(v[0]);
      r.choice_tokens.push_back(static_cast<int64_t>(v[1]));
      r.choice_llamacpp.push_back(by_cp[c]);
      r.choice_chars.push_back(s.n_chars);
    }
    s0 += nc;
    r.task_index.push_back(ts.scored[k]);
    r.gold.push_back(task.gold);
    r.pred.push_back(argmax(by_sum.data(), nc));
    r.pred_norm.push_back(argmax(by_norm.data(), nc));
    r.pred_llamacpp.push_back(argmax(by_cp.data(), nc));
    correct[0] += r.pred.back() == task.gold;
    correct[1] += r.pred_norm.back() == task.gold;
    correct[2] += r.pred_llamacpp.back() == task.gold;
    p_guess.push_back(1.0 / nc);
  }
  r.choice_offset.push_back(s0);
  r.n = static_cast<int64_t>(ts.scored.size());
  if (r.n > 0) {
    const double n = static_cast<double>(r.n);
    r.acc = correct[0] / n;
    r.acc_norm = correct[1] / n;
    r.acc_llamacpp = correct[2] / n;
    r.acc_se = accuracy_se(r.acc, r.n);
    r.acc_norm_se = accuracy_se(r.acc_norm, r.n);
    r.acc_llamacpp_se = accuracy_se(r.acc_llamacpp, r.n);
    r.chance = std::accumulate(p_guess.begin(), p_guess.end(), 0.0) / n;
    r.p_vs_chance = poisson_binomial_upper_tail(p_guess, correct[0]);
  }
  return r;
}

std::string task_result_line(const TaskResult& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "n=%lld acc=%.6f acc_norm=%.6f acc_llamacpp=%.6f", static_cast<long long>(r.n), r.acc,
                r.acc_norm, r.acc_llamacpp);
  return buf;
}

std::string task_stderr_line(const TaskResult& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "stderr acc=%.6f acc_norm=%.6f acc_llamacpp=%.6f chance=%.6f p(acc by chance)=%.3g",
                r.acc_se, r.acc_norm_se, r.acc_llamacpp_se, r.chance, r.p_vs_chance);
  return buf;
}

}  // namespace qsweep
