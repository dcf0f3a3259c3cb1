// activation_store.cc — memory or an unlinked scratch file.
#include "quant/activation_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace qsweep {

ActivationStore::ActivationStore(int64_t n_seq, int seq_len, int hidden, int64_t budget, const std::string& dir)
    : n_seq_(n_seq), row_bytes_seq_(static_cast<int64_t>(seq_len) * hidden * static_cast<int64_t>(sizeof(float))) {
  if (bytes() <= budget) {
    mem_.resize(static_cast<size_t>(bytes() / static_cast<int64_t>(sizeof(float))));
    return;
  }
  std::string tmpl = (dir.empty() ? std::string(".") : dir) + "/qsweep-activations-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  QS_CHECK(fd_ >= 0, tmpl << ": cannot create the activation scratch file (--scratch-dir " << dir
                          << "): " << std::strerror(errno));
  path_ = name.data();
  ::unlink(path_.c_str());
  if (::ftruncate(fd_, bytes()) != 0) {
    const int e = errno;
    ::close(fd_);
    QS_THROW(path_ << ": cannot size the activation scratch file to " << bytes() << " bytes: " << std::strerror(e));
  }
}

ActivationStore::~ActivationStore() {
  if (fd_ >= 0) ::close(fd_);
}

void ActivationStore::read(int64_t seq0, int64_t n, float* dst) const {
  QS_ASSERT(seq0 >= 0 && seq0 + n <= n_seq_, "activation store: read range");
  const int64_t off = seq0 * row_bytes_seq_, len = n * row_bytes_seq_;
  if (fd_ < 0) {
    std::memcpy(dst, reinterpret_cast<const char*>(mem_.data()) + off, static_cast<size_t>(len));
    return;
  }
  char* p = reinterpret_cast<char*>(dst);
  for (int64_t done = 0; done < len;) {
    const ssize_t r = ::pread(fd_, p + done, static_cast<size_t>(len - done), off + done);
    QS_CHECK(r > 0 || (r < 0 && errno == EINTR), path_ << ": cannot read activations: " << std::strerror(errno));
    if (r > 0) done += r;
  }
}

void ActivationStore::write(int64_t seq0, int64_t n, const float* src) {
  QS_ASSERT(seq0 >= 0 && seq0 + n <= n_seq_, "activation store: write range");
  const int64_t off = seq0 * row_bytes_seq_, len = n * row_bytes_seq_;
  if (fd_ < 0) {
    std::memcpy(reinterpret_cast<char*>(mem_.data()) + off, src, static_cast<size_t>(len));
    return;
  }
  const char* p = reinterpret_cast<const char*>(src);
  for (int64_t done = 0; done < len;) {
    const ssize_t r = ::pwrite(fd_, p + done, static_cast<size_t>(len - done), off + done);
    QS_CHECK(r > 0 || (r < 0 && errno == EINTR),
             path_ << ": cannot write activations (disk full? --scratch-dir): " << std::strerror(errno));
    if (r > 0) done += r;
  }
}

}  // namespace qsweep
