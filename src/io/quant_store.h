// quant_store.h — quantized.h5, the file `qsweep quantize` writes and `qsweep eval --quantized`
// reads. Together with the original model directory (embeddings, lm_head, unquantized tensors)
// it rebuilds the quantized model exactly:
//   /                      attributes: method, grid, calibration settings, size accounting, provenance
//   /calibration/offsets   where each calibration window starts
//   /blocks/<i>/input_layernorm, post_attention_layernorm   (after AWQ folding; float32)
//   /blocks/<i>/attention_entropy                           mean entropy per head (nats)
//   /blocks/<i>/stats/<input>/{sum_sq,sum_abs,max_abs}       per channel; attributes tokens,
//                          s1..s4, n_below, mean, std, excess_kurtosis, sparsity
//   /layers/<module>/codes  packed b-bit codes (see grid.h: little-endian bit stream, row-major)
//   /layers/<module>/scales [out x groups] float32, zeros [out x groups] int32, g_idx [in] int32
//                          (act-order only); attributes bits, group_size, sym, out_features,
//                          in_features, weight_mse, output_error, seconds, awq_alpha, gptq_damp, awq_clip_shrink,
//                          dead_columns. Dequantized ŵ = (code − zero) · scale.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/h5_writer.h"
#include "io/provenance.h"
#include "quant/quantize_model.h"

namespace qsweep {

class H5Reader;

// What every calibration-based file records about its calibration data.
struct CalibrationRecord {
  std::string model, calib;
  int n_calib = 0, seq_len = 0, calib_chunk = 0;
  uint64_t seed = 0;
  double sparsity_threshold = 0;
  const std::vector<int64_t>* offsets = nullptr;
};

class QuantizedFileWriter : public QuantizeSink {
 public:
  explicit QuantizedFileWriter(const std::string& path);  // rank 0 only
  H5Writer& writer() { return w_; }
  // Writes format, calibration record and provenance, then `complete` last, and commits.
  void finish(const std::string& format, const CalibrationRecord& c, const Provenance& prov);
  void on_block(const BlockResult& b) override;
  void on_lm_head(const LinearResult& r) override;

 private:
  void write_linear(const LinearResult& r);
  H5Writer w_;
};

// Reads quantized.h5 and substitutes the quantized weights (and folded norms) into blocks.
class QuantizedModel {
 public:
  explicit QuantizedModel(const std::string& path);
  ~QuantizedModel();
  void apply(BlockWeights& w) const;
  bool has_lm_head() const;
  void apply_lm_head(std::vector<float>& lm_head, int vocab, int hidden) const;
  std::string describe() const;  // "gptq W4 g128"
  const std::string& path() const { return path_; }

 private:
  std::vector<float> read_dequantized(const std::string& obj, int out, int in) const;
  std::string path_;
  std::unique_ptr<H5Reader> r_;
};

}  // namespace qsweep
