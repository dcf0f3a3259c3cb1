// task_scoring.h — multiple-choice accuracy: every choice's log-probability under the model,
// spread over ranks, and the three accuracies with their standard errors.
//
// Each task runs as one packed sequence, as llama.cpp batches a HellaSwag task: the choices'
// common prefix once, then each choice's own tokens as a branch that attends to the prefix and to
// itself, with RoPE positions continuing from the prefix (model/forward.h SeqPacking) — the same
// arithmetic as separate sequences, without recomputing the context per choice. Tasks are ordered
// longest first (ties by task order) and grouped into fixed batches of at most --batch × --ctx
// tokens, padded at the end to the batch's longest (causal attention: padding never reaches a real
// position). Batches are the same for any rank count; ranks own contiguous runs of them and run the
// model block by block, as the perplexity evaluation does, so a task's numbers do not depend on
// the rank count.
//
//   acc           argmax over choices of Σ log p(choice tokens | preceding tokens)
//   acc_norm      argmax of that sum ÷ the choice's length in characters (lm-evaluation-harness)
//   acc_llamacpp  argmax of the mean log p of the tokens after the choices' common prefix
//                 (llama-perplexity --hellaswag); ties go to the lowest index, as there.
// Standard error of an accuracy p over n tasks: sqrt(p(1-p)/(n-1)) (the sample standard
// deviation of the per-task 0/1 scores over sqrt(n), as lm-evaluation-harness reports it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "eval/perplexity.h"
#include "eval/tasks.h"

namespace qsweep {

struct TaskResult {
  int64_t n = 0;                       // tasks scored
  std::vector<int> too_long;           // task indices not scored (a sequence longer than --ctx)
  double acc = 0, acc_norm = 0, acc_llamacpp = 0;
  double acc_se = 0, acc_norm_se = 0, acc_llamacpp_se = 0;
  double chance = 0;                   // expected accuracy of uniform guessing: mean of 1/choices
  double p_vs_chance = 1;              // P(acc ≥ observed | guessing), exact (Poisson binomial)
  // Per scored task (in task order): gold, and the three predictions.
  std::vector<int> task_index, gold, pred, pred_norm, pred_llamacpp;
  // Per scored choice (task by task): Σ log p after the context and its token count; the mean
  // log p after the common prefix; the choice's characters.
  std::vector<double> choice_logprob, choice_llamacpp;
  std::vector<int64_t> choice_tokens, choice_chars, choice_offset;  // offset: per task, into the choice arrays
  int64_t tokens_processed = 0;
  double forward_seconds = 0;
};

// Scores `seqs` (from make_task_sequences of `tasks`); opt.quantized, batch, activation budget,
// progress and should_stop are used as by evaluate_perplexity (not KL).
TaskResult score_tasks(const LlamaWeights& model, const std::vector<Task>& tasks, const TaskSequences& seqs,
                       int ctx, const Comm& comm, const EvalOptions& opt);

// The one-line results: "n=N acc=… acc_norm=… acc_llamacpp=…" and the standard errors' line.
std::string task_result_line(const TaskResult& r);
std::string task_stderr_line(const TaskResult& r);

// P(X ≥ k) for X the number of successes of independent trials with probabilities p (exact).
double poisson_binomial_upper_tail(const std::vector<double>& p, int64_t k);

}  // namespace qsweep
