// error.cc — the abort path for broken invariants (QS_ASSERT).
#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace qsweep {

void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "qsweep: internal error at %s:%d: assertion '%s' failed: %s\n", file, line,
               expr, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace qsweep
