// stage_profile.cuh — QSWEEP_CUDA_PROFILE=1: where an engine's GPU time goes, per stage.
//
// The engine marks its stream at stage boundaries (mark(stage): the work since the previous mark
// was that stage); collect() waits for the stream and adds up the intervals between consecutive
// events. Host-timed stages (uploads, which wait for their copies anyway) go in through add().
// Off (the default) it records nothing and costs one branch per mark. The totals are printed to
// stderr when the engine is destroyed: a breakdown for bench/gpu_check.sh, not a result.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace qsweep::cuda::detail {

class StageProfile {
 public:
  // names: the stages, in the order of their indices.
  StageProfile(const char* engine, std::vector<const char*> names)
      : engine_(engine), names_(std::move(names)), seconds_(names_.size(), 0.0) {
    const char* e = std::getenv("QSWEEP_CUDA_PROFILE");
    on_ = e && *e && *e != '0';
  }
  ~StageProfile() {
    if (!on_) return;
    double total = 0;
    for (double s : seconds_) total += s;
    std::fprintf(stderr, "qsweep: cuda profile (%s): %.3f s:", engine_, total);
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (seconds_[i] > 0) std::fprintf(stderr, " %s %.3f (%.0f%%)", names_[i], seconds_[i], 100 * seconds_[i] / total);
    std::fprintf(stderr, "\n");
    for (cudaEvent_t e : pool_) cudaEventDestroy(e);
  }
  StageProfile(const StageProfile&) = delete;
  StageProfile& operator=(const StageProfile&) = delete;

  bool on() const { return on_; }
  // The stream's work since the previous mark belongs to `stage` (the first mark opens the run).
  void mark(int stage, cudaStream_t s) {
    if (!on_) return;
    if (used_ == pool_.size()) {
      cudaEvent_t e;
      if (cudaEventCreate(&e) != cudaSuccess) return;
      pool_.push_back(e);
    }
    cudaEventRecord(pool_[used_], s);
    stage_.resize(used_ + 1);
    stage_[used_++] = stage;
  }
  // Adds the intervals marked so far (waits for the stream's last mark).
  void collect() {
    if (!on_ || used_ == 0) return;
    cudaEventSynchronize(pool_[used_ - 1]);
    for (std::size_t i = 1; i < used_; ++i) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, pool_[i - 1], pool_[i]) == cudaSuccess) seconds_[stage_[i]] += ms / 1e3;
    }
    used_ = 0;
  }
  void add(int stage, double seconds) {
    if (on_) seconds_[stage] += seconds;
  }

 private:
  const char* engine_;
  std::vector<const char*> names_;
  std::vector<double> seconds_;
  std::vector<cudaEvent_t> pool_;
  std::vector<int> stage_;
  std::size_t used_ = 0;
  bool on_ = false;
};

}  // namespace qsweep::cuda::detail
