// json_file.cc — JSON file reading.
#include "core/json_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace qsweep {

nlohmann::json read_json_file(const std::string& path, const std::string& why) {
  std::ifstream in(path);
  QS_CHECK(in, path << ": cannot open (" << why << ")");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    QS_THROW(path << ": not valid JSON: " << e.what());
  }
}

}  // namespace qsweep
