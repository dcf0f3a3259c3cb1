// tasks.cc — reading multiple-choice task files and tokenizing their choices (see tasks.h).
#include "eval/tasks.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"
#include <fstream>
#include <sstream>

namespace qsweep {

TaskFormat parse_task_format(const std::string& s) {
  if (s == "jsonl") return TaskFormat::Jsonl;
  if (s == "hellaswag") return TaskFormat::Hellaswag;
  throw Error("--tasks-format '" + s + "': expected jsonl or hellaswag");
}

namespace {

std::vector<std::string> split_lines(const std::string& body) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    std::string line = body.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    pos = eol + 1;
  }
  return lines;
}

std::string where(const std::string& path, int line) { return path + ":" + std::to_string(line); }

void check_task(const std::string& path, const Task& t) {
  QS_CHECK(t.choices.size() >= 2, where(path, t.line) << ": the task has " << t.choices.size()
                                                      << " choice(s), expected at least two");
  for (size_t c = 0; c < t.choices.size(); ++c)
    QS_CHECK(!t.choices[c].empty(), where(path, t.line) << ": choice " << c << " is empty");
  QS_CHECK(t.gold >= 0 && t.gold < static_cast<int>(t.choices.size()),
           where(path, t.line) << ": gold index " << t.gold << " is out of range (the task has " << t.choices.size()
                               << " choices, indices 0.." << t.choices.size() - 1 << ")");
  QS_CHECK(utf8_first_invalid(t.context) == t.context.size(), where(path, t.line) << ": the context is not valid UTF-8");
  for (size_t c = 0; c < t.choices.size(); ++c)
    QS_CHECK(utf8_first_invalid(t.choices[c]) == t.choices[c].size(),
             where(path, t.line) << ": choice " << c << " is not valid UTF-8");
}

std::vector<Task> parse_jsonl(const std::string& path, const std::vector<std::string>& lines) {
  std::vector<Task> tasks;
  for (size_t i = 0; i < lines.size(); ++i) {
    const int ln = static_cast<int>(i + 1);
    const std::string& line = lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where(path, ln) + ": not a JSON object (" + e.what() + ")");
    }
    QS_CHECK(j.is_object(), where(path, ln) << ": expected a JSON object {\"context\", \"choices\", \"gold\"}, found a "
                                            << j.type_name());
    Task t;
    t.line = ln;
    auto ctx = j.find("context");
    QS_CHECK(ctx != j.end() && ctx->is_string(), where(path, ln) << ": expected a string \"context\"");
    t.context = ctx->get<std::string>();
    auto ch = j.find("choices");
    QS_CHECK(ch != j.end() && ch->is_array(), where(path, ln) << ": expected \"choices\", an array of strings");
    for (const auto& c : *ch) {
      QS_CHECK(c.is_string(), where(path, ln) << ": \"choices\" holds a " << c.type_name() << ", expected strings");
      t.choices.push_back(c.get<std::string>());
    }
    auto g = j.find("gold");
    QS_CHECK(g != j.end() && g->is_number_integer(), where(path, ln) << ": expected an integer \"gold\" (the correct choice's index)");
    const int64_t gold = g->get<int64_t>();
    t.gold = gold < 0 || gold > (1 << 30) ? -1 : static_cast<int>(gold);
    QS_CHECK(t.gold >= 0, where(path, ln) << ": gold index " << gold << " is out of range (the task has " << t.choices.size()
                                          << " choices)");
    auto id = j.find("id");
    if (id == j.end()) {
      t.id = std::to_string(tasks.size() + 1);
    } else {
      QS_CHECK(id->is_string() || id->is_number_integer(), where(path, ln) << ": \"id\" must be a string or an integer");
      t.id = id->is_string() ? id->get<std::string>() : std::to_string(id->get<int64_t>());
    }
    check_task(path, t);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::vector<Task> parse_hellaswag(const std::string& path, const std::vector<std::string>& lines) {
  QS_CHECK(lines.size() % 6 == 0, path << ": " << lines.size()
                                       << " lines, expected a multiple of 6 (llama.cpp's HellaSwag format: context, gold "
                                          "index, four endings per task)");
  std::vector<Task> tasks;
  for (size_t i = 0; i < lines.size(); i += 6) {
    Task t;
    t.line = static_cast<int>(i + 1);
    t.id = std::to_string(i / 6 + 1);
    t.context = lines[i];
    const std::string& g = lines[i + 1];
    QS_CHECK(!g.empty() && g.size() < 9 && g.find_first_not_of("0123456789") == std::string::npos,
             where(path, t.line + 1) << ": expected the gold ending's index (0..3), found '" << g << "'");
    t.gold = std::stoi(g);
    for (int e = 0; e < 4; ++e) {
      QS_CHECK(!lines[i + 2 + e].empty(), where(path, t.line + 2 + e) << ": ending " << e << " is empty");
      t.choices.push_back(" " + lines[i + 2 + e]);
    }
    check_task(path, t);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

std::vector<Task> parse_tasks(const std::string& path, const std::string& body, TaskFormat format) {
  const std::vector<std::string> lines = split_lines(body);
  std::vector<Task> tasks = format == TaskFormat::Jsonl ? parse_jsonl(path, lines) : parse_hellaswag(path, lines);
  QS_CHECK(!tasks.empty(), path << ": no tasks");
  return tasks;
}

std::vector<Task> read_task_file(const std::string& path, TaskFormat format) {
  std::ifstream in(path, std::ios::binary);
  QS_CHECK(in, path << ": cannot open the task file");
  std::ostringstream body;
  body << in.rdbuf();
  QS_CHECK(!in.bad(), path << ": read error");
  return parse_tasks(path, body.str(), format);
}

TaskSequences make_task_sequences(const std::string& path, const std::vector<Task>& tasks, const TextTokenizer& tok,
                                  int ctx) {
  const std::vector<int32_t>& prefix = tok.special().prefix;
  auto encode = [&](const std::string& text) {
    std::vector<int32_t> ids = prefix;
    const std::vector<int32_t> body = tok.encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  };
  TaskSequences out;
  for (size_t ti = 0; ti < tasks.size(); ++ti) {
    const Task& t = tasks[ti];
    const std::vector<int32_t> ctx_ids = encode(t.context);
    std::vector<ChoiceSeq> seqs;
    size_t longest = 0, shortest = SIZE_MAX;
    for (size_t c = 0; c < t.choices.size(); ++c) {
      ChoiceSeq s;
      s.task = static_cast<int>(ti);
      s.choice = static_cast<int>(c);
      s.tokens = encode(t.context + t.choices[c]);
      s.choice_begin = static_cast<int>(common_prefix(ctx_ids, s.tokens));
      QS_CHECK(s.choice_begin < static_cast<int>(s.tokens.size()),
               where(path, t.line) << ": choice " << c << " adds no token after the context's");
      QS_CHECK(s.choice_begin >= 1, where(path, t.line) << ": choice " << c
                                                        << "'s first token has no position to be predicted from (an empty "
                                                           "context, and the tokenizer adds no BOS)");
      for (size_t i = 0, n = t.choices[c].size(); i < n; i += utf8_seq_len(static_cast<unsigned char>(t.choices[c][i])))
        ++s.n_chars;
      longest = std::max(longest, s.tokens.size());
      shortest = std::min(shortest, s.tokens.size());
      seqs.push_back(std::move(s));
    }
    // llama.cpp: the common prefix of all choices' sequences, at least one token left per choice.
    size_t cp = seqs[0].tokens.size();
    for (size_t c = 1; c < seqs.size(); ++c) cp = std::min(cp, common_prefix(seqs[0].tokens, seqs[c].tokens));
    cp = std::min(cp, shortest - 1);
    QS_CHECK(cp >= 1, where(path, t.line) << ": the choices share no first token to predict from (an empty context, "
                                             "and the tokenizer adds no BOS)");
    if (static_cast<int64_t>(longest) > ctx) {
      out.too_long.push_back(static_cast<int>(ti));
      continue;
    }
    for (ChoiceSeq& s : seqs) {
      s.common_begin = static_cast<int>(cp);
      out.seqs.push_back(std::move(s));
    }
    out.scored.push_back(static_cast<int>(ti));
    out.n_choices.push_back(static_cast<int>(t.choices.size()));
  }
  return out;
}

}  // namespace qsweep
