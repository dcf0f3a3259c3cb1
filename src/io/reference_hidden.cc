// reference_hidden.cc — header check, mapping, and the collective pwrite/rename writer.
#include "io/reference_hidden.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace qsweep {

namespace {
constexpr char kMagic[8] = {'Q', 'S', 'W', 'E', 'E', 'P', 'R', 'H'};
constexpr size_t kHeader = 64;

size_t window_bytes(const ReferenceShape& s) {
  return static_cast<size_t>(s.scored) * static_cast<size_t>(s.hidden) * sizeof(float);
}
}  // namespace

ReferenceHidden::ReferenceHidden(const std::string& path, const ReferenceShape& expect)
    : map_(std::make_unique<MappedFile>(path)), shape_(expect) {
  const unsigned char* p = map_->data();
  QS_CHECK(map_->size() >= kHeader && std::memcmp(p, kMagic, 8) == 0,
           path << ": not a qsweep reference-hidden-state file");
  int64_t h[4];
  std::memcpy(h, p + 8, sizeof(h));
  const ReferenceShape got{h[1], static_cast<int>(h[2]), static_cast<int>(h[3])};
  QS_CHECK(h[0] == 1 && got == expect,
           path << ": holds " << got.n_windows << " windows x " << got.scored << " positions x "
                << got.hidden << " (expected " << expect.n_windows << " x " << expect.scored << " x "
                << expect.hidden << "); delete it to recompute");
  QS_CHECK(map_->size() == kHeader + window_bytes(expect) * expect.n_windows,
           path << ": truncated (" << map_->size() << " bytes); delete it to recompute");
}

const float* ReferenceHidden::window(int64_t k) const {
  QS_ASSERT(k >= 0 && k < shape_.n_windows, "reference window " << k);
  return reinterpret_cast<const float*>(map_->data() + kHeader + window_bytes(shape_) * k);
}

ReferenceHiddenWriter::ReferenceHiddenWriter(const std::string& path, const ReferenceShape& shape,
                                             const Comm& comm)
    : path_(path), shape_(shape), comm_(comm) {
  // One temporary name for all ranks, chosen by rank 0 (pid) and broadcast.
  int64_t pid = ::getpid();
  comm_.bcast(&pid, sizeof(pid), 0);
  tmp_ = path + ".tmp." + std::to_string(pid);
  if (comm_.rank() == 0) {
    int fd = ::open(tmp_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    QS_CHECK(fd >= 0, tmp_ << ": cannot create: " << std::strerror(errno));
    unsigned char head[kHeader] = {0};
    std::memcpy(head, kMagic, 8);
    const int64_t h[4] = {1, shape.n_windows, shape.scored, shape.hidden};
    std::memcpy(head + 8, h, sizeof(h));
    const bool ok = ::pwrite(fd, head, kHeader, 0) == static_cast<ssize_t>(kHeader) &&
                    ::ftruncate(fd, static_cast<off_t>(kHeader + window_bytes(shape) * shape.n_windows)) == 0;
    ::close(fd);
    QS_CHECK(ok, tmp_ << ": cannot write: " << std::strerror(errno));
  }
  comm_.barrier();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CLOEXEC);
  QS_CHECK(fd_ >= 0, tmp_ << ": cannot open for writing: " << std::strerror(errno));
}

ReferenceHiddenWriter::~ReferenceHiddenWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && comm_.rank() == 0) std::remove(tmp_.c_str());
}

void ReferenceHiddenWriter::write_window(int64_t k, const float* rows) {
  QS_ASSERT(k >= 0 && k < shape_.n_windows, "reference window " << k);
  const size_t n = window_bytes(shape_);
  const off_t off = static_cast<off_t>(kHeader + n * k);
  const char* p = reinterpret_cast<const char*>(rows);
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd_, p + done, n - done, off + static_cast<off_t>(done));
    QS_CHECK(w > 0, tmp_ << ": write failed: " << std::strerror(errno));
    done += static_cast<size_t>(w);
  }
}

void ReferenceHiddenWriter::commit() {
  QS_CHECK(::fsync(fd_) == 0, tmp_ << ": fsync failed: " << std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  comm_.barrier();
  if (comm_.rank() == 0)
    QS_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0,
             path_ << ": cannot rename from " << tmp_ << ": " << std::strerror(errno));
  comm_.barrier();
  committed_ = true;
}

}  // namespace qsweep
