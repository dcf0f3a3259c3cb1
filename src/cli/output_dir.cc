// output_dir.cc — creating an output folder and taking it back on failure.
#include "cli/output_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include "cli/command.h"

namespace qsweep {

namespace {
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

void OutputDir::create(const std::string& dir) {
  std::vector<std::string> missing;
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if ((i == dir.size() || dir[i] == '/') && !cur.empty() && cur != "." && !exists(cur))
      missing.push_back(cur);
    if (i < dir.size()) cur += dir[i];
  }
  // Recorded first, so levels made before a failing one are taken back too.
  created_.insert(created_.end(), missing.begin(), missing.end());
  make_dirs(dir);
}

OutputDir::~OutputDir() {
  // rmdir fails on a folder that is not empty, which is what keeps a result.
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) ::rmdir(it->c_str());
}

}  // namespace qsweep
