// json_file.h — reading a JSON file with errors that name it (config.json, index files, plans).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace qsweep {

// Parses `path`; throws qsweep::Error "<path>: cannot open (<why>)" or "<path>: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path, const std::string& why);

}  // namespace qsweep
