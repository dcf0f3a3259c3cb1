// kl_probe.cc — single-layer probes against the full-precision model (see kl_probe.h).
#include "quant/kl_probe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "model/cpu_ops.h"

namespace qsweep {

KlProbe::KlProbe(const LlamaWeights& model, std::vector<int32_t> windows, int n, int ctx, int batch, int64_t budget_bytes)
    : model_(model), n_(n), ctx_(ctx), batch_(std::max(1, batch)), ids_(std::move(windows)), fwd_(make_forward(model.config())) {
  const ModelConfig& cfg = model.config();
  const int H = cfg.hidden_size, L = cfg.num_hidden_layers;
  const int64_t rows = static_cast<int64_t>(n) * ctx;
  const double need = static_cast<double>(rows) * (static_cast<double>(H) * (L + 1) + cfg.vocab_size) * 4;
  QS_CHECK(need <= static_cast<double>(budget_bytes),
           "kl-probe: " << n << " probe windows of " << ctx << " tokens need " << need / 1048576 << " MB (hidden states of "
                        << L << " blocks and " << cfg.vocab_size << " logits per position), more than --activation-budget-mb "
                        << budget_bytes / 1048576 << ": use fewer --probe-windows or a shorter --probe-ctx");
  head_ = HeadWeights::load(model);
  fwd_->hold(head_);
  std::vector<float> x(static_cast<size_t>(rows) * H);
  model.embed(ids_.data(), rows, x.data());
  for (int l = 0; l < L; ++l) {
    block_in_.push_back(x);
    std::unique_ptr<BlockWeights> w = model.load_block(l);
    fwd_->hold(*w);
    for (int b0 = 0; b0 < n; b0 += batch_) {
      const int nb = std::min(batch_, n - b0);
      fwd_->run_block(*w, x.data() + static_cast<size_t>(b0) * ctx * H, nb, ctx);
    }
  }
  ref_logits_.resize(static_cast<size_t>(rows) * cfg.vocab_size);
  std::vector<int64_t> r(rows);
  std::iota(r.begin(), r.end(), 0);
  for (int b0 = 0; b0 < n; b0 += batch_) {
    const int64_t r0 = static_cast<int64_t>(b0) * ctx, nr = static_cast<int64_t>(std::min(batch_, n - b0)) * ctx;
    fwd_->head_logits(head_, x.data(), r.data() + r0, nr, ref_logits_.data() + r0 * cfg.vocab_size);
  }
}

double KlProbe::kl(int block, Linear l, const QuantizedLinear& q) {
  const ModelConfig& cfg = model_.config();
  const int H = cfg.hidden_size, L = cfg.num_hidden_layers, V = cfg.vocab_size;
  const int64_t rows = static_cast<int64_t>(n_) * ctx_;
  std::vector<float> x = block_in_[block];
  for (int b = block; b < L; ++b) {
    std::unique_ptr<BlockWeights> w = model_.load_block(b);
    if (b == block) {
      const std::vector<float> deq = q.dequantize();
      w->set_linear(l, deq.data());
    }
    fwd_->hold(*w);
    for (int b0 = 0; b0 < n_; b0 += batch_) {
      const int nb = std::min(batch_, n_ - b0);
      fwd_->run_block(*w, x.data() + static_cast<size_t>(b0) * ctx_ * H, nb, ctx_);
    }
  }
  std::vector<float> logits;
  std::vector<double> kl;
  std::vector<uint8_t> top1;
  std::vector<int64_t> r;
  double sum = 0;
  for (int b0 = 0; b0 < n_; b0 += batch_) {
    const int64_t r0 = static_cast<int64_t>(b0) * ctx_, nr = static_cast<int64_t>(std::min(batch_, n_ - b0)) * ctx_;
    r.resize(nr);
    std::iota(r.begin(), r.end(), r0);
    logits.resize(static_cast<size_t>(nr) * V);
    fwd_->head_logits(head_, x.data(), r.data(), nr, logits.data());
    kl.resize(nr);
    top1.resize(nr);
    rows_kl(ref_logits_.data() + r0 * V, logits.data(), nr, V, kl.data(), top1.data());
    for (double v : kl) sum += v;
  }
  return sum / static_cast<double>(rows);
}

namespace {
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * (static_cast<double>(i) + static_cast<double>(j)) + 1;
    i = j + 1;
  }
  return r;
}
}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  QS_ASSERT(a.size() == b.size(), "spearman: sizes");
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::nan("");
}

}  // namespace qsweep
