// input_fingerprint.cc — hashing a sweep's inputs, inputs.json I/O and the comparison.
#include "sweep/input_fingerprint.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/json_file.h"
#include "core/sha256.h"
#include "model/tokenizer.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

using nlohmann::json;

namespace {

FileFingerprint stat_file(const std::string& role, const std::string& path) {
  FileFingerprint f;
  f.role = role;
  f.path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return f;
  f.size = static_cast<int64_t>(st.st_size);
  f.mtime = std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  return f;
}

FileFingerprint whole_file(const std::string& role, const std::string& path) {
  FileFingerprint f = stat_file(role, path);
  if (f.size >= 0) f.sha256 = sha256_file_hex(path);
  return f;
}

// The 8-byte length and the JSON header of a safetensors file.
FileFingerprint safetensors_header(const std::string& path) {
  FileFingerprint f = stat_file("safetensors header", path);
  if (f.size < 0) return f;
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  QS_CHECK(fp, path << ": cannot be read (for its fingerprint)");
  unsigned char len[8] = {0};
  const size_t got = std::fread(len, 1, 8, fp);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | len[i];
  Sha256 h;
  h.update(len, got);
  if (got == 8 && n <= static_cast<uint64_t>(f.size) - 8) {
    std::vector<char> header(n);
    const size_t r = std::fread(header.data(), 1, n, fp);
    h.update(header.data(), r);
  }
  std::fclose(fp);
  f.sha256 = h.hex_digest();
  return f;
}

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

}  // namespace

InputFingerprint fingerprint_inputs(const std::string& model_dir, const std::string& calib,
                                   const std::vector<std::string>& eval_files,
                                   const std::vector<std::string>& task_files) {
  InputFingerprint fp;
  if (!calib.empty()) fp.files.push_back(whole_file("calibration text", calib));
  for (const std::string& e : eval_files) fp.files.push_back(whole_file("evaluation text", e));
  for (const std::string& t : task_files) fp.files.push_back(whole_file("task file", t));
  fp.files.push_back(whole_file("model config", model_dir + "/config.json"));
  for (const std::string& t : tokenizer_files(model_dir)) fp.files.push_back(whole_file("tokenizer file", t));
  std::vector<std::string> shards;
  if (DIR* d = ::opendir(model_dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (ends_with(n, ".safetensors")) shards.push_back(n);
      if (n == "model.safetensors.index.json") fp.files.push_back(whole_file("safetensors index", model_dir + "/" + n));
    }
    ::closedir(d);
  }
  std::sort(shards.begin(), shards.end());
  for (const auto& s : shards) fp.files.push_back(safetensors_header(model_dir + "/" + s));
  return fp;
}

void write_fingerprint(const std::string& dir, const InputFingerprint& f) {
  json files = json::array();
  for (const auto& x : f.files)
    files.push_back({{"role", x.role}, {"path", x.path}, {"size", x.size}, {"mtime", x.mtime}, {"sha256", x.sha256}});
  json j = {{"format", "qsweep-sweep-inputs"}, {"version", 1}, {"compute", f.compute}, {"files", files}};
  write_text_atomic(dir + "/inputs.json", j.dump(1) + "\n");
}

bool has_fingerprint(const std::string& dir) { return file_exists(dir + "/inputs.json"); }

InputFingerprint read_fingerprint(const std::string& dir) {
  const std::string path = dir + "/inputs.json";
  const json j = read_json_file(path, "the sweep's input fingerprints");
  InputFingerprint f;
  try {
    QS_CHECK(j.at("format") == "qsweep-sweep-inputs", path << ": not a qsweep input fingerprint file");
    f.compute = j.value("compute", std::string("cpu fp32"));
    for (const auto& x : j.at("files")) {
      FileFingerprint ff;
      ff.role = x.at("role").get<std::string>();
      ff.path = x.at("path").get<std::string>();
      ff.size = x.at("size").get<int64_t>();
      ff.mtime = x.at("mtime").get<std::string>();
      ff.sha256 = x.at("sha256").get<std::string>();
      f.files.push_back(ff);
    }
  } catch (const json::exception& e) {
    QS_THROW(path << ": malformed: " << e.what());
  }
  return f;
}

FingerprintChanges compare_fingerprints(const InputFingerprint& before, const InputFingerprint& now) {
  FingerprintChanges c;
  if (before.compute != now.compute)
    c.changed.push_back("compute device " + before.compute + " -> " + now.compute + " (results of one device are not mixed with another's: pass --device " +
                        before.compute.substr(0, before.compute.find(' ')) + " --compute-dtype " +
                        before.compute.substr(before.compute.find(' ') + 1) + " to continue on the device it started on)");
  std::map<std::string, const FileFingerprint*> old;
  for (const auto& f : before.files) old[f.path] = &f;
  for (const auto& f : now.files) {
    auto it = old.find(f.path);
    const std::string name = f.role + " " + f.path;
    if (it == old.end()) {
      c.changed.push_back(name + " (not part of the sweep when it started)");
      continue;
    }
    const FileFingerprint& o = *it->second;
    old.erase(it);
    if (f.size < 0 && o.size >= 0)
      c.changed.push_back(name + " (removed)");
    else if (o.size != f.size)
      c.changed.push_back(name + " (size " + std::to_string(o.size) + " -> " + std::to_string(f.size) + " bytes)");
    else if (o.sha256 != f.sha256)
      c.changed.push_back(name + " (sha256 " + o.sha256.substr(0, 12) + "... -> " + f.sha256.substr(0, 12) + "...)");
    else if (o.mtime != f.mtime)
      c.touched.push_back(name);
  }
  for (const auto& kv : old) c.changed.push_back(kv.second->role + " " + kv.first + " (no longer part of the model or job)");
  return c;
}

}  // namespace qsweep
