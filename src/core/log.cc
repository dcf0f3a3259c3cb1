// log.cc — logging and progress implementation.
#include "core/log.h"

#include <chrono>
#include <cstdarg>

namespace qsweep {

namespace {
int g_rank = 0, g_size = 1;
bool g_quiet = false;
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void log_set_rank(int rank, int size) {
  g_rank = rank;
  g_size = size;
}
void log_set_quiet(bool quiet) { g_quiet = quiet; }

void log_info(const char* fmt, ...) {
  if (g_rank != 0 || g_quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::fputs("qsweep: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

void log_warn(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (g_size > 1)
    std::fprintf(stderr, "qsweep[rank %d]: warning: ", g_rank);
  else
    std::fputs("qsweep: warning: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

void result(const char* fmt, ...) {
  if (g_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stdout, fmt, ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  va_end(ap);
}

Progress::Progress(std::string stage, long total, std::string unit, double interval)
    : stage_(std::move(stage)), unit_(std::move(unit)), total_(total), interval_(interval),
      start_(now()) {}

void Progress::update(long done, double tokens) {
  if (done < total_ && now() - last_ >= interval_) print(done, tokens, false);  // finish() prints the end
}

void Progress::finish(double tokens) { print(total_, tokens, true); }

void Progress::print(long done, double tokens, bool final) {
  last_ = now();
  if (g_rank != 0 || g_quiet) return;
  const double el = last_ - start_;
  const double frac = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
  std::fprintf(stderr, "qsweep: %s %ld/%ld %s %3.0f%% %.1f s", stage_.c_str(), done, total_,
               unit_.c_str(), 100.0 * frac, el);
  if (!final && frac > 0) std::fprintf(stderr, " ETA %.1f s", el / frac - el);
  if (tokens > 0 && el > 0) std::fprintf(stderr, " %.0f tok/s (rank 0)", tokens / el);
  std::fputc('\n', stderr);
}

}  // namespace qsweep
