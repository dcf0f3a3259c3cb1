// quant_store.cc — writing and reading quantized.h5.
#include "io/quant_store.h"

#include <cmath>

#include "core/error.h"
#include "io/h5_reader.h"

namespace qsweep {

QuantizedFileWriter::QuantizedFileWriter(const std::string& path) : w_(path) {
  w_.group("/blocks");
  w_.group("/layers");
  w_.group("/calibration");
}

void QuantizedFileWriter::finish(const std::string& format, const CalibrationRecord& c,
                                 const Provenance& prov) {
  w_.attr("/", "format", format);
  w_.attr("/", "format_version", int64_t(1));
  w_.attr("/", "model", c.model);
  w_.attr("/", "calib", c.calib);
  w_.attr("/", "n_calib", int64_t(c.n_calib));
  w_.attr("/", "seq_len", int64_t(c.seq_len));
  w_.attr("/", "seed", static_cast<int64_t>(c.seed));
  w_.attr("/", "calib_chunk", int64_t(c.calib_chunk));
  w_.attr("/", "sparsity_threshold", c.sparsity_threshold);
  if (c.offsets) w_.dataset("/calibration/offsets", *c.offsets);
  prov.write(w_);
  w_.attr("/", "complete", int64_t(1));  // last: a file without it is not a result
  w_.commit();
}

void QuantizedFileWriter::on_block(const BlockResult& b) {
  const std::string g = "/blocks/" + std::to_string(b.index);
  w_.group(g);
  w_.dataset(g + "/input_layernorm", b.input_norm);
  w_.dataset(g + "/post_attention_layernorm", b.post_norm);
  w_.attr(g, "seconds", b.seconds);
  if (!b.train_loss.empty()) {  // blockap's training curves
    w_.dataset(g + "/train_loss", b.train_loss);
    if (!b.val_loss.empty()) w_.dataset(g + "/val_loss", b.val_loss);
    w_.attr(g, "train_epochs", int64_t(b.train_epochs));
  }
  for (const auto& [k, v] : b.attrs) w_.attr(g, k, v);
  const BlockCalibStats& st = *b.stats;
  std::vector<double> ent(st.entropy_sum.size());
  for (size_t h = 0; h < ent.size(); ++h) ent[h] = st.entropy_sum[h] / st.entropy_queries;
  w_.dataset(g + "/attention_entropy", ent);
  w_.group(g + "/stats");
  for (int i = 0; i < kNumBlockInputs; ++i) {
    const InputStats& s = st.input(static_cast<BlockInput>(i));
    const std::string p = g + "/stats/" + block_input_name(static_cast<BlockInput>(i));
    w_.group(p);
    w_.dataset(p + "/sum_sq", s.sum_sq);
    w_.dataset(p + "/sum_abs", s.sum_abs);
    w_.dataset(p + "/max_abs", s.max_abs);
    w_.attr(p, "tokens", s.tokens);
    w_.attr(p, "s1", s.s1);
    w_.attr(p, "s2", s.s2);
    w_.attr(p, "s3", s.s3);
    w_.attr(p, "s4", s.s4);
    w_.attr(p, "n_below", s.n_below);
    w_.attr(p, "mean", s.mean());
    w_.attr(p, "std", s.std());
    w_.attr(p, "excess_kurtosis", s.excess_kurtosis());
    if (i == static_cast<int>(BlockInput::GateUp) && !st.praq_importance.empty()) {
      // --awq-salience praq: the importance the scale search used here, and AWQ's L2 salience
      w_.dataset(p + "/praq_importance", st.praq_importance);
    }
    w_.attr(p, "sparsity", s.sparsity());
  }
  for (const LinearResult& r : b.linears) write_linear(r);
}

void QuantizedFileWriter::on_lm_head(const LinearResult& r) { write_linear(r); }

void QuantizedFileWriter::write_linear(const LinearResult& r) {
  {
    const std::string p = "/layers/" + r.name;
    w_.group(p);
    w_.dataset(p + "/codes", pack_codes(r.q.codes, r.q.grid.bits));
    w_.dataset(p + "/scales", r.q.scales);
    w_.dataset(p + "/zeros", r.q.zeros);
    if (!r.q.g_idx.empty()) w_.dataset(p + "/g_idx", r.q.g_idx);
    w_.attr(p, "bits", int64_t(r.q.grid.bits));
    w_.attr(p, "group_size", int64_t(r.q.grid.group_size));
    w_.attr(p, "sym", int64_t(r.q.grid.sym));
    w_.attr(p, "out_features", int64_t(r.q.out));
    w_.attr(p, "in_features", int64_t(r.q.in));
    w_.attr(p, "weight_mse", r.weight_mse);
    w_.attr(p, "output_error", r.output_error);
    w_.attr(p, "seconds", r.seconds);
    w_.attr(p, "awq_alpha", r.awq_alpha);
    w_.attr(p, "gptq_damp", r.gptq_damp);
    w_.attr(p, "awq_clip_shrink", r.awq_clip_shrink);
    w_.attr(p, "dead_columns", int64_t(r.dead_columns));
    if (!std::isnan(r.refine_before)) {  // --refine: moves and the objective it lowered
      w_.attr(p, "refine_moves", r.refine_moves);
      w_.attr(p, "refine_objective_before", r.refine_before);
      w_.attr(p, "refine_objective_after", r.refine_after);
    }
  }
}

QuantizedModel::QuantizedModel(const std::string& path) : path_(path), r_(std::make_unique<H5Reader>(path)) {
  QS_CHECK(r_->has_attr("/", "format") && r_->attr_string("/", "format") == "qsweep-quantized",
           path << ": not a qsweep quantized file (expected attribute format = qsweep-quantized)");
  QS_CHECK(r_->attr_int("/", "complete") == 1, path << ": incomplete quantization output");
}

QuantizedModel::~QuantizedModel() = default;

std::string QuantizedModel::describe() const {
  return r_->attr_string("/", "method") + " W" + std::to_string(r_->attr_int("/", "bits")) + " g" +
         std::to_string(r_->attr_int("/", "group_size"));
}

void QuantizedModel::apply(BlockWeights& w) const {
  const std::string g = "/blocks/" + std::to_string(w.index);
  QS_CHECK(r_->exists(g), path_ << ": has no block " << w.index << " (quantized from another model?)");
  const auto in_norm = r_->read_float(g + "/input_layernorm");
  const auto post_norm = r_->read_float(g + "/post_attention_layernorm");
  QS_CHECK(in_norm.size() == w.input_norm.size() && post_norm.size() == w.post_norm.size(),
           path_ << ": block " << w.index << " norms do not match the model's hidden size");
  w.input_norm = in_norm;
  w.post_norm = post_norm;
  for (int l = 0; l < kNumLinear; ++l) {
    const Linear L = static_cast<Linear>(l);
    const std::vector<float> deq =
        read_dequantized("/layers/" + linear_module_name(w.index, L), w.out_features(L), w.in_features(L));
    w.set_linear(L, deq.data());
  }
}

std::vector<float> QuantizedModel::read_dequantized(const std::string& p, int out, int in) const {
  QuantizedLinear q;
  q.out = static_cast<int>(r_->attr_int(p, "out_features"));
  q.in = static_cast<int>(r_->attr_int(p, "in_features"));
  QS_CHECK(q.out == out && q.in == in, path_ << ": " << p << " is " << q.out << " x " << q.in
                                            << ", the model's is " << out << " x " << in);
  q.grid.bits = static_cast<int>(r_->attr_int(p, "bits"));
  q.grid.group_size = static_cast<int>(r_->attr_int(p, "group_size"));
  q.grid.sym = r_->attr_int(p, "sym") != 0;
  q.codes = unpack_codes(r_->read_uint8(p + "/codes"), q.grid.bits, static_cast<size_t>(q.out) * q.in);
  q.scales = r_->read_float(p + "/scales");
  q.zeros = r_->read_int32(p + "/zeros");
  if (r_->exists(p + "/g_idx")) q.g_idx = r_->read_int32(p + "/g_idx");
  QS_CHECK(q.scales.size() == static_cast<size_t>(q.out) * q.grid.groups(q.in) && q.zeros.size() == q.scales.size(),
           path_ << ": " << p << " scales/zeros have the wrong size");
  return q.dequantize();
}

bool QuantizedModel::has_lm_head() const { return r_->exists("/layers/lm_head"); }

void QuantizedModel::apply_lm_head(std::vector<float>& lm_head, int vocab, int hidden) const {
  lm_head = read_dequantized("/layers/lm_head", vocab, hidden);
}

}  // namespace qsweep
