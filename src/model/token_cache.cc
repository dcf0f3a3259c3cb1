// token_cache.cc — the per-user cache of tokenized texts (see token_cache.h).
#include "model/token_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "core/sha256.h"
#include "qsweep/version.h"

namespace qsweep {

namespace {
constexpr char kMagic[8] = {'Q', 'S', 'T', 'O', 'K', 'v', '1', '\n'};

bool make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string p = dir.substr(0, i);
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::string entry_path(const std::string& dir, const std::string& key) { return dir + "/" + key.substr(0, 32) + ".tok"; }
}  // namespace

std::string token_cache_dir() {
  if (const char* v = std::getenv("QSWEEP_TOKEN_CACHE")) return std::strcmp(v, "off") == 0 ? std::string() : std::string(v);
  // A build from a modified tree has no version that names its tokenizer code: no default cache.
  const std::string git = kGitVersion;
  if (git.size() >= 6 && git.compare(git.size() - 6, 6, "-dirty") == 0) return "";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/qsweep/tokens";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/qsweep/tokens";
  return "";
}

std::string token_cache_key(const std::string& text, const std::vector<std::string>& tokenizer_files, int vocab_size) {
  // The build's version too: a tokenizer fixed in a later build must not meet its old ids.
  std::string k = std::string("qsweep-token-cache-1\nbuild ") + kVersion + " " + kGitVersion + "\nvocab " + std::to_string(vocab_size) + "\ntext " + sha256_hex(text) + "\n";
  for (const std::string& f : tokenizer_files) {
    const size_t slash = f.find_last_of('/');
    k += (slash == std::string::npos ? f : f.substr(slash + 1)) + " " + sha256_file_hex(f) + "\n";
  }
  return sha256_hex(k);
}

std::optional<std::vector<int32_t>> token_cache_get(const std::string& dir, const std::string& key) {
  if (dir.empty()) return std::nullopt;
  FILE* f = std::fopen(entry_path(dir, key).c_str(), "rb");
  if (!f) return std::nullopt;
  char magic[8];
  char stored_key[64];
  uint64_t n = 0;
  std::optional<std::vector<int32_t>> out;
  struct stat st {};
  if (std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, kMagic, 8) == 0 && std::fread(stored_key, 1, 64, f) == 64 &&
      key.size() == 64 && std::memcmp(stored_key, key.data(), 64) == 0 && std::fread(&n, 8, 1, f) == 1 &&
      ::fstat(fileno(f), &st) == 0 && static_cast<uint64_t>(st.st_size) == 80 + 4 * n) {
    std::vector<int32_t> ids(n);
    if (n == 0 || std::fread(ids.data(), 4, n, f) == n) out = std::move(ids);
  }
  std::fclose(f);
  return out;
}

bool token_cache_put(const std::string& dir, const std::string& key, const std::vector<int32_t>& ids) {
  if (dir.empty() || key.size() != 64) return false;
  if (!make_dirs(dir)) {
    log_info("token cache: cannot create %s (%s); not cached", dir.c_str(), std::strerror(errno));
    return false;
  }
  const std::string path = entry_path(dir, key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    log_info("token cache: cannot write %s (%s); not cached", tmp.c_str(), std::strerror(errno));
    return false;
  }
  const uint64_t n = ids.size();
  bool ok = std::fwrite(kMagic, 1, 8, f) == 8 && std::fwrite(key.data(), 1, 64, f) == 64 && std::fwrite(&n, 8, 1, f) == 1 &&
            (n == 0 || std::fwrite(ids.data(), 4, n, f) == n);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    log_info("token cache: cannot write %s; not cached", path.c_str());
    return false;
  }
  return true;
}

}  // namespace qsweep
