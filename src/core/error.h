// error.h — qsweep's two error levels (after faiss): a user's bad input throws qsweep::Error
// with a message naming the file, the field and what was expected; a broken internal invariant
// is a bug and aborts with file:line (QS_ASSERT). main() turns an Error into a clear message and
// a non-zero exit, never a crash.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace qsweep {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Thrown by a long stage whose should_stop poll returned true (qsweep run's SIGTERM/SIGUSR1):
// not an error — the stage left no partial result, and the runner exits 75 to be requeued.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted by a stop signal") {}
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace qsweep

// QS_THROW(stream expression): throw qsweep::Error with a composed message.
#define QS_THROW(msg)                       \
  do {                                      \
    std::ostringstream qs_oss_;             \
    qs_oss_ << msg;                         \
    throw ::qsweep::Error(qs_oss_.str());   \
  } while (0)

// QS_CHECK(cond, msg): validate user input; throws qsweep::Error(msg) when cond is false.
#define QS_CHECK(cond, msg) \
  do {                      \
    if (!(cond)) QS_THROW(msg); \
  } while (0)

// QS_ASSERT(cond, msg): internal invariant; a failure is a qsweep bug, reported with file:line.
#define QS_ASSERT(cond, msg)                                                  \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::ostringstream qs_oss_;                                             \
      qs_oss_ << msg;                                                         \
      ::qsweep::assert_fail(#cond, __FILE__, __LINE__, qs_oss_.str());        \
    }                                                                         \
  } while (0)
