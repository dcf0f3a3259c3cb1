// fuzz_job_file.cc — libFuzzer target: a sweep's job file (read_job_file), a --set assignment
// applied to it, and the grid built from its axes, as `qsweep run` does before any cell runs.
//
// Input: job file text [NUL --set assignment]. The grid is only expanded when it has at most
// 4096 cells (a real job file with more is the user's choice, not a parser bug).
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "sweep/job_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  const auto parts = fuzz::split_parts(data, size, 2);
  const std::string path = fuzz::write_scratch("job.ini", parts[0]);
  fuzz::expect_only_qsweep_errors([&] {
    JobFile job = read_job_file(path);
    for (const JobEntry& e : job.entries) {
      if (e.values.empty()) fuzz::finding("entry " + e.where() + " has no values");
      if (job.find(e.section, e.key) != &e) fuzz::finding("find() does not return the entry " + e.where());
      if (e.section.empty()) (void)job.resolve(e.raw);
    }
    for (const std::string& s : job.sections()) (void)job.section(s);
    if (parts.size() == 2) apply_set(job, std::string(parts[1]));
    const auto axes = grid_axes(job);
    size_t cells = 1;
    for (const Axis& a : axes) {
      cells *= a.values.size();
      if (cells > 4096) return;
    }
    if (grid_points(axes).size() != cells) fuzz::finding("grid_points() size differs from the product of the axes");
  });
  return 0;
}
