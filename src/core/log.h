// log.h — rank-aware logging and progress lines with ETA. Info goes to stderr from rank 0 only
// (64 ranks printing the same line help nobody); warnings and errors from any rank carry the rank.
// Results (the lines scripts parse, e.g. "perplexity: ...") go to stdout via result().
#pragma once
#include <cstdio>
#include <string>

namespace qsweep {

void log_set_rank(int rank, int size);
void log_set_quiet(bool quiet);
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// A result line on stdout (rank 0 only).
void result(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Progress of a long stage: "eval  37/109 windows  34%  12.3 s  ETA 21.0 s  5600 tok/s".
// Prints at most every `interval` seconds and once at the end (rank 0 only).
class Progress {
 public:
  Progress(std::string stage, long total, std::string unit, double interval = 2.0);
  // `done` is this rank's count; the ETA assumes ranks progress alike.
  void update(long done, double tokens = 0);
  void finish(double tokens = 0);

 private:
  void print(long done, double tokens, bool final);
  std::string stage_, unit_;
  long total_;
  double interval_, start_, last_ = -1e30;
};

}  // namespace qsweep
