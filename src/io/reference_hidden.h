// reference_hidden.h — the full-precision model's final hidden states at every scored position
// of an evaluation, kept on disk so a sweep computes them once and every cell's KL-divergence
// reuses them instead of running the full-precision model alongside its quantized one.
//
// Storing the residual stream before the final norm (hidden floats per position) instead of the
// logits (vocab floats) keeps the file vocab/hidden times smaller; the cell recomputes the
// full-precision logits from it with the same head, batch by batch, so its KL equals, bit for bit,
// what `qsweep eval --kl-divergence` computes with both models side by side (test).
//
// Layout: a 64-byte header ("QSWEEPRH", version, n_windows, scored per window, hidden), then
// fp32 rows [n_windows][scored][hidden], window-major. Each rank writes its own windows (pwrite);
// the file appears under its final name only when every rank is done (rename), and each rank
// later maps only the pages of its own windows.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "dist/comm.h"

namespace qsweep {

struct ReferenceShape {
  int64_t n_windows = 0;
  int scored = 0, hidden = 0;
  bool operator==(const ReferenceShape& o) const {
    return n_windows == o.n_windows && scored == o.scored && hidden == o.hidden;
  }
};

class ReferenceHidden {
 public:
  // Maps `path` and checks its header against `expect` (throws naming the file).
  ReferenceHidden(const std::string& path, const ReferenceShape& expect);
  const float* window(int64_t k) const;  // [scored, hidden] rows of window k
  const ReferenceShape& shape() const { return shape_; }

 private:
  std::unique_ptr<MappedFile> map_;
  ReferenceShape shape_;
};

// Collective over `comm`: every rank constructs it, writes its windows, and calls commit().
class ReferenceHiddenWriter {
 public:
  ReferenceHiddenWriter(const std::string& path, const ReferenceShape& shape, const Comm& comm);
  ~ReferenceHiddenWriter();  // removes the temporary file unless committed
  void write_window(int64_t k, const float* rows);
  void commit();

 private:
  std::string path_, tmp_;
  ReferenceShape shape_;
  Comm comm_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace qsweep
