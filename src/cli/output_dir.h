// output_dir.h — an output folder a command creates for its results, removed again when the
// command fails before writing into it: a failed eval or spectrum must not leave an empty
// --output-dir (or its new parents) that looks like the start of a result.
#pragma once
#include <string>
#include <vector>

namespace qsweep {

class OutputDir {
 public:
  OutputDir() = default;
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  // Creates `dir` and its missing parents (make_dirs), remembering which levels this call made.
  void create(const std::string& dir);
  // Removes the levels create() made that are still empty, deepest first; a folder that holds a
  // file (a result, or someone else's) stays. Run on success too: by then it is not empty.
  ~OutputDir();

 private:
  std::vector<std::string> created_;  // shallowest first
};

}  // namespace qsweep
