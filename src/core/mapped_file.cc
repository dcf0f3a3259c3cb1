// mapped_file.cc — mmap/munmap with errors that name the file.
#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace qsweep {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  QS_CHECK(fd >= 0, path << ": cannot open: " << std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    QS_THROW(path << ": cannot stat: " << std::strerror(e));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    ::close(fd);
    QS_CHECK(p != MAP_FAILED, path << ": cannot mmap " << size_ << " bytes: " << std::strerror(e));
    data_ = static_cast<const unsigned char*>(p);
  } else {
    ::close(fd);
  }
}

void MappedFile::release(const void* p, size_t bytes) const {
  if (!data_ || bytes == 0) return;
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) & ~(page - 1);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data_), end = begin + size_;
  const uintptr_t a = std::max(lo, begin & ~(page - 1)), b = std::min(hi, (end + page - 1) & ~(page - 1));
  if (a < b) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);  // advisory: failure is harmless
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
}

}  // namespace qsweep
