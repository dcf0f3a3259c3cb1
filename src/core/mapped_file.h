// mapped_file.h — a read-only memory map of a whole file (RAII). Checkpoints are mapped, not
// read: the OS pages in only the tensors a rank touches, so a rank that owns one decoder block
// never reads the rest of a 140 GB checkpoint.
#pragma once
#include <cstddef>
#include <string>

namespace qsweep {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws qsweep::Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace qsweep
