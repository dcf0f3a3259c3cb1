// activation_store.h — a rank's calibration hidden states [sequences, seq_len, hidden] between
// decoder blocks, in memory while they fit in --activation-budget-mb and in a scratch file
// beyond it, read and written a chunk of sequences at a time.
//
// The pipeline needs one copy: each chunk is read into a buffer, run through a block, and its
// output written back over its input (the next pass reads the next chunk). In memory, read and
// write are copies of a chunk (negligible next to the block's forward pass); spilled, they are
// pread/pwrite of an unlinked file in the scratch folder, so nothing is left behind if the rank
// dies and the page cache, not the rank's resident memory, holds what the OS can keep.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

class ActivationStore {
 public:
  // `n_seq` sequences of `seq_len` rows of `hidden` floats; spilled when their size exceeds
  // `budget_bytes`, to a file in `scratch_dir`.
  ActivationStore(int64_t n_seq, int seq_len, int hidden, int64_t budget_bytes, const std::string& scratch_dir);
  ~ActivationStore();
  ActivationStore(const ActivationStore&) = delete;
  ActivationStore& operator=(const ActivationStore&) = delete;

  bool spilled() const { return fd_ >= 0; }
  int64_t bytes() const { return n_seq_ * row_bytes_seq_; }
  const std::string& scratch_path() const { return path_; }
  // The sequences in memory (all of them, in order), or nullptr when spilled.
  float* memory() { return fd_ >= 0 ? nullptr : mem_.data(); }
  // Sequences [seq0, seq0 + n) (relative to this rank's first) to/from dst/src.
  void read(int64_t seq0, int64_t n, float* dst) const;
  void write(int64_t seq0, int64_t n, const float* src);

 private:
  int64_t n_seq_, row_bytes_seq_;
  std::vector<float> mem_;
  int fd_ = -1;
  std::string path_;
};

}  // namespace qsweep
