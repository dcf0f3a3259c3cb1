// sha256.h — SHA-256 (FIPS 180-4), small and dependency-free, for the fingerprints a sweep
// records of its inputs (texts, tokenizer files, safetensors headers) so `run --resume` can tell
// a changed input from an unchanged one. Not for anything secret.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace qsweep {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex_digest();  // lowercase, 64 characters; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const std::string& data);
// The digest of a whole file; throws naming the file when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace qsweep
