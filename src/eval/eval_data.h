// eval_data.h — evaluation data files: lists of them (`--data a.txt,b.jsonl`, a job file's
// `eval = a.txt, b.jsonl`), each file's dataset name (its stem, unique within a list), and JSON
// Lines documents (one JSON object per line with a string "text"; the documents joined with
// "\n\n", as the GPTQ/AWQ evaluation scripts join WikiText/C4 records).
#pragma once
#include <string>
#include <vector>

namespace qsweep {

// "a.txt,b.jsonl" → {"a.txt", "b.jsonl"} (spaces around names dropped); throws on an empty entry.
std::vector<std::string> split_data_list(const std::string& list, const std::string& what);

// The dataset name of a data file: its file name without the last extension. Throws naming both
// files when two entries of `files` share one.
std::string dataset_name(const std::string& path);
std::vector<std::string> dataset_names(const std::vector<std::string>& files);

bool is_jsonl_path(const std::string& path);
// The text of a JSON Lines file's documents: every non-blank line must be a JSON object with a
// string "text"; errors name the file and the line. Documents are joined with "\n\n".
std::string jsonl_documents_text(const std::string& path, const std::string& body);

}  // namespace qsweep
