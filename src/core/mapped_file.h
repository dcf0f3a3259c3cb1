// mapped_file.h — a read-only memory map of a whole file (RAII). Checkpoints are mapped, not
// read: the OS pages in only the tensors a rank touches, so a rank that owns one decoder block
// never reads the rest of a 140 GB checkpoint; and what it has read and converted it releases.
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
  // Drops the pages of [p, p + bytes) from this process's resident set (madvise MADV_DONTNEED; the
  // mapping is read-only, so a later read pages them in again from the file). Mapped pages count
  // in RSS: without this, reading a model block by block leaves the whole model resident.
  void release(const void* p, size_t bytes) const;

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace qsweep
