// provenance.cc — provenance attributes.
#include "io/provenance.h"

#include "core/backend.h"

#include <ctime>

#include "io/h5_writer.h"
#include "qsweep/version.h"

namespace qsweep {

std::string Provenance::now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Provenance::join_argv(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    const std::string a = argv[i];
    const bool quote = a.empty() || a.find_first_of(" \t'\"$") != std::string::npos;
    s += quote ? "'" + a + "'" : a;
  }
  return s;
}

void Provenance::write(H5Writer& w, const std::string& obj) const {
  w.attr(obj, "qsweep_version", std::string(kVersion));
  w.attr(obj, "code_version", std::string(kGitVersion));
  w.attr(obj, "command_line", command_line);
  w.attr(obj, "n_ranks", static_cast<int64_t>(n_ranks));
  w.attr(obj, "threads_per_rank", static_cast<int64_t>(threads_per_rank));
  w.attr(obj, "compute", compute);  // part of a result's identity: cpu and cuda results differ in the last bits
  w.attr(obj, "device", device);
  w.attr(obj, "backend", backend_summary());  // the writing rank's: BLAS version and kernel family
  std::string h;
  for (size_t i = 0; i < hosts.size(); ++i) h += (i ? "," : "") + hosts[i];
  w.attr(obj, "hosts", h);
  w.attr(obj, "start_time", start_time);
  w.attr(obj, "end_time", end_time);
}

}  // namespace qsweep
