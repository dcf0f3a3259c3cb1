// provenance.h — what every output file records about how it was made: code version, command
// line, rank count, host names, start and end time (UTC, ISO 8601). These are the fields
// `qsweep diff` ignores when it compares results.
#pragma once
#include <string>
#include <vector>

namespace qsweep {

class H5Writer;

struct Provenance {
  std::string command_line;
  std::string start_time, end_time;
  int n_ranks = 1;
  int threads_per_rank = 1;
  std::string compute = "cpu fp32";  // device kind and compute dtype (core/device.h ComputeDevice::identity)
  std::string device = "cpu";          // rank 0's binding, e.g. "cuda:0 (NVIDIA H200, ...)"
  std::vector<std::string> hosts;  // one per rank

  static std::string now_utc();
  static std::string join_argv(int argc, char** argv);
  void write(H5Writer& w, const std::string& obj = "/") const;
};

}  // namespace qsweep
