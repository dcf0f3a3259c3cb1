// eval_data.cc — evaluation data lists, dataset names, JSON Lines documents (see eval_data.h).
#include "eval/eval_data.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qsweep {

namespace {
std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}
}  // namespace

std::vector<std::string> split_data_list(const std::string& list, const std::string& what) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    const std::string item = trim(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    QS_CHECK(!item.empty(), what << " '" << list << "': an empty entry (expected data files separated by commas)");
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string dataset_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = base.find_last_of('.');
  if (dot != std::string::npos && dot > 0) base.resize(dot);
  return base;
}

std::vector<std::string> dataset_names(const std::vector<std::string>& files) {
  std::vector<std::string> names;
  for (size_t i = 0; i < files.size(); ++i) {
    names.push_back(dataset_name(files[i]));
    for (size_t j = 0; j < i; ++j)
      QS_CHECK(names[j] != names[i], "data files " << files[j] << " and " << files[i] << " have the same name '" << names[i]
                                                   << "' (results are stored by file name without its extension): rename one");
  }
  return names;
}

bool is_jsonl_path(const std::string& path) {
  return path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
}

std::string jsonl_documents_text(const std::string& path, const std::string& body) {
  std::string text;
  size_t pos = 0, line_no = 0, docs = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    std::string line = body.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ":" + std::to_string(line_no) + ": not a JSON object (" + e.what() + ")");
    }
    QS_CHECK(j.is_object(), path << ":" << line_no << ": expected a JSON object with a string \"text\", found a " << j.type_name());
    auto it = j.find("text");
    QS_CHECK(it != j.end(), path << ":" << line_no << ": the object has no \"text\" field");
    QS_CHECK(it->is_string(), path << ":" << line_no << ": \"text\" is a " << it->type_name() << ", expected a string");
    if (docs++) text += "\n\n";
    text += it->get<std::string>();
  }
  QS_CHECK(docs > 0, path << ": no documents (expected JSON Lines: one {\"text\": ...} object per line)");
  return text;
}

}  // namespace qsweep
