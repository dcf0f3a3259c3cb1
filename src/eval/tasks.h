// tasks.h — multiple-choice task files and the token sequences that score them.
//
// Two formats:
//  jsonl      one JSON object per line: {"context": str, "choices": [str, ...], "gold": i} with an
//             optional "id" (string or integer); blank lines skipped.
//  hellaswag  llama.cpp's HellaSwag text: 6 lines per task (context, gold index, four endings);
//             read as context + choices " " + ending, so the scored text is context + " " + ending,
//             exactly the string llama.cpp tokenizes.
// The text scored for a choice is context + choice, tokenized as one string with the tokenizer's
// own special tokens in front (llama.cpp's common_tokenize(..., add_special = true)). The
// choice's tokens are those after the longest common prefix of that sequence and the context's
// own tokenization (the context's tokens, unless the tokenizer merged across the boundary).
// llama.cpp's variant scores the tokens after the common prefix of all choices' sequences.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace qsweep {

enum class TaskFormat { Jsonl, Hellaswag };
TaskFormat parse_task_format(const std::string& s);  // throws for an unknown name

struct Task {
  std::string id;       // "id" of the JSON line, or the task's 1-based number
  int line = 0;         // first line of the task in its file (1-based)
  std::string context;
  std::vector<std::string> choices;
  int gold = 0;
};

// Reads and checks a task file; every error names the file and line.
std::vector<Task> read_task_file(const std::string& path, TaskFormat format);
std::vector<Task> parse_tasks(const std::string& path, const std::string& body, TaskFormat format);

// One choice of one task as a token sequence.
struct ChoiceSeq {
  int task = 0, choice = 0;
  std::vector<int32_t> tokens;  // special prefix + encode(context + choice)
  int choice_begin = 0;         // first token of the choice (acc, acc_norm)
  int common_begin = 0;         // first token after the choices' common prefix (acc_llamacpp)
  int64_t n_chars = 0;          // the choice's length in Unicode characters (acc_norm)
  int first_scored() const { return choice_begin < common_begin ? choice_begin : common_begin; }
};

struct TaskSequences {
  std::vector<ChoiceSeq> seqs;        // the scored tasks' choices, task by task
  std::vector<int> scored;            // indices into the task list of the scored tasks
  std::vector<int> too_long;          // tasks with a sequence longer than ctx: reported, not scored
  std::vector<int> n_choices;         // per scored task
};

// Tokenizes every choice of every task. Throws naming the file and line when a choice adds no
// token after the context, or when the first choice token has no position to be predicted from
// (an empty context and a tokenizer without BOS).
TaskSequences make_task_sequences(const std::string& path, const std::vector<Task>& tasks, const TextTokenizer& tok,
                                  int ctx);

}  // namespace qsweep
