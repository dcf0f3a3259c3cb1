// block_buffers.h — the fp64 Σxxᵀ totals of a block's calibration statistics (608 MB per block at
// 1B shapes, 8·C² bytes per input of C channels), handed back when a block is done and reused by
// the next block's conversion, so that it neither faults in nor zero-fills fresh pages: on a 2-core
// VM the conversion of the 1b preset's 8192-channel down_proj total took 0.6–1.2 s, mostly the
// kernel zeroing new pages under std::vector's serial zero fill, before the parallel conversion.
//
// A pool for one quantize run (quantize_model owns it), matched by size. It holds the previous
// block's totals from the end of that block to the next block's reduction, i.e. during the next
// block's calibration forward pass (README: the peak memory stays the quantization phase's).
#pragma once
#include <cstddef>
#include <vector>

namespace qsweep {

class BlockBuffers {
 public:
  // n doubles; the contents are unspecified (a reused array): for callers that write every element.
  std::vector<double> doubles(std::size_t n);
  // Hand an array back for the next block (never throws: a full or failing pool frees it).
  void give(std::vector<double>&& v) noexcept;
  std::size_t held() const { return doubles_.size(); }

 private:
  static constexpr std::size_t kMaxHeld = 4;  // a block has four inputs
  std::vector<std::vector<double>> doubles_;
};

}  // namespace qsweep
