// test_util.h — helpers shared by the tests: where the models and data are, scratch
// directories, running the qsweep binary, and calling the NumPy reference implementation.
#pragma once
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace qsweep::test {

inline std::string source_dir() { return QSWEEP_SOURCE_DIR; }
inline std::string shared_dir() { return QSWEEP_SHARED_DIR; }
// A file's bytes ("" when it cannot be read).
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline std::string qsweep_binary() { return QSWEEP_BINARY; }
inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
// The bundled bf16 model, always present.
inline std::string demo_model() { return source_dir() + "/demo/kjv-llama"; }
inline std::string demo_test_text() { return source_dir() + "/demo/data/kjv-test.txt"; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// A fresh scratch directory under the build tree's temp space.
inline std::string scratch_dir(const std::string& name) {
  char tmpl[] = "/tmp/qsweep-test-XXXXXX";
  std::string d = ::mkdtemp(tmpl);
  d += "/" + name;
  ::mkdir(d.c_str(), 0755);
  return d;
}

struct RunResult {
  int exit_code;
  std::string output;  // stdout + stderr
};
inline RunResult run_command(const std::string& cmd) {
  RunResult r{-1, ""};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return r;
}

}  // namespace qsweep::test
