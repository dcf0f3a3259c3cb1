// fuzz_util.cc — the scratch folder, input splitting and finding reports of the fuzz targets.
#include "fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace qsweep::fuzz {

namespace {
std::string make_scratch() {
  // tmpfs when there is one: on a disk file system, rewriting the input file each run costs
  // more than parsing it (~40x fewer executions per second on ext4).
  const char* tmp = std::getenv("TMPDIR");
  const char* base = tmp && *tmp ? tmp : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string tmpl = std::string(base) + "/qsweep-fuzz-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::perror(("qsweep fuzz: mkdtemp " + tmpl).c_str());
    std::abort();
  }
  return tmpl;
}

std::string* g_scratch = nullptr;  // leaked on purpose: atexit removes the folder, not the string
void remove_scratch_dir() {
  std::error_code ec;
  if (g_scratch) std::filesystem::remove_all(*g_scratch, ec);
}
}  // namespace

const std::string& scratch_dir() {
  if (!g_scratch) {
    g_scratch = new std::string(make_scratch());
    std::atexit(remove_scratch_dir);
  }
  return *g_scratch;
}

std::string write_scratch(const std::string& name, std::string_view body) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  if (!out) finding("cannot write the scratch file " + path);
  return path;
}

void remove_scratch(const std::string& name) { ::unlink((scratch_dir() + "/" + name).c_str()); }

std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  size_t from = 0;
  while (parts.size() + 1 < max_parts) {
    const size_t nul = s.find('\0', from);
    if (nul == std::string_view::npos) break;
    parts.push_back(s.substr(from, nul - from));
    from = nul + 1;
  }
  parts.push_back(s.substr(from));
  return parts;
}

bool verbose() {
  static const bool v = std::getenv("QSWEEP_FUZZ_VERBOSE") != nullptr;
  return v;
}

void finding(const std::string& what) {
  std::fprintf(stderr, "qsweep fuzz: FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace qsweep::fuzz
