// fisher.cc — the empirical-Fisher sensitivity score (see fisher.h).
#include "train/fisher.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "model/forward.h"
#include "train/block_grad.h"
#include "train/block_pass.h"

namespace qsweep {

namespace {
const Linear kOrder[] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};
}

FisherProbe::FisherProbe(const LlamaWeights& model, const std::vector<int32_t>& windows, int n, int ctx, const Comm& comm,
                         int64_t budget_bytes, bool progress)
    : model_(model), comm_(comm), n_(n), ctx_(ctx) {
  const ModelConfig& cfg = model.config();
  const int H = cfg.hidden_size, L = cfg.num_hidden_layers;
  QS_CHECK(n >= 1 && ctx >= 2, "fisher: need at least one window of at least 2 tokens");
  QS_ASSERT(windows.size() == static_cast<size_t>(n) * ctx, "fisher windows");
  for (int w = comm.rank(); w < n; w += comm.size()) mine_.push_back(w);
  const int64_t m = static_cast<int64_t>(mine_.size());
  const int64_t most = (n + comm.size() - 1) / comm.size();  // the same verdict on every rank
  const double need = 2.0 * L * static_cast<double>(most) * ctx * H * 4;
  QS_CHECK(need <= static_cast<double>(budget_bytes),
           "fisher: " << most << " windows of " << ctx << " tokens per rank need " << need / 1048576
                      << " MB (each block's input and output gradient), more than --activation-budget-mb "
                      << budget_bytes / 1048576 << ": use fewer --fisher-windows, more ranks or a larger budget");
  Timer t;
  const size_t per = static_cast<size_t>(ctx) * H;
  // Forward: every block's input, per window (the training forward, so block_scores recomputes
  // exactly the same activations).
  x_in_.assign(static_cast<size_t>(L), std::vector<float>(static_cast<size_t>(m) * per));
  std::vector<float> x(static_cast<size_t>(m) * per);
  for (int64_t i = 0; i < m; ++i)
    model.embed(windows.data() + static_cast<size_t>(mine_[static_cast<size_t>(i)]) * ctx, ctx, x.data() + i * per);
  run_agreed(comm, [&] {
    pass_ = make_block_pass(cfg);
    for (int b = 0; b < L; ++b) {
      std::copy(x.begin(), x.end(), x_in_[static_cast<size_t>(b)].begin());
      const BlockParams<float> p = block_params_from<float>(*model.load_block(b));
      pass_->set_params(p);
      for (int64_t i = 0; i < m; ++i) pass_->forward(x.data() + i * per, 1, ctx);
    }
  });
  // The head: the mean NLL of next-token prediction per window, and its gradient at the last
  // block's output.
  dy_.assign(static_cast<size_t>(L), std::vector<float>(static_cast<size_t>(m) * per));
  {
    const HeadWeights head = HeadWeights::load(model);
    std::vector<double> losses(static_cast<size_t>(n), 0.0);
    run_agreed(comm, [&] {
      const std::unique_ptr<HeadPass> hp = make_head_pass(cfg, head);  // on this process's device
      for (int64_t i = 0; i < m; ++i) {
        const int32_t* tok = windows.data() + static_cast<size_t>(mine_[static_cast<size_t>(i)]) * ctx;
        losses[static_cast<size_t>(mine_[static_cast<size_t>(i)])] =
            hp->loss_and_grad(x.data() + i * per, ctx, ctx - 1, tok + 1, dy_[static_cast<size_t>(L - 1)].data() + i * per);
      }
    });
    // Each window's loss belongs to one rank (the others hold 0): a sum in window order.
    std::vector<double> all(static_cast<size_t>(n), 0.0);
    std::vector<double> mine;
    for (int w : mine_) mine.insert(mine.end(), {static_cast<double>(w), losses[static_cast<size_t>(w)]});
    const std::vector<double> g = comm.allgatherv(mine);
    for (size_t k = 0; k + 1 < g.size(); k += 2) all[static_cast<size_t>(g[k])] = g[k + 1];
    for (int w = 0; w < n; ++w) {  // checked after the gather, so every rank stops alike
      QS_CHECK(std::isfinite(all[static_cast<size_t>(w)]), "fisher: non-finite loss on calibration window " << w);
      loss_ += all[static_cast<size_t>(w)];
    }
    loss_ /= n;
  }
  // Backward to every block's output: dy_[b−1] = ∂loss/∂(input of block b).
  run_agreed(comm, [&] {
    BlockParams<float> grads;
    std::vector<float> dx(per);
    for (int b = L - 1; b >= 1; --b) {
      const BlockParams<float> p = block_params_from<float>(*model.load_block(b));
      pass_->set_params(p);
      for (int64_t i = 0; i < m; ++i) {
        block_grads(b, static_cast<size_t>(i), grads, dx.data());
        std::copy(dx.begin(), dx.end(), dy_[static_cast<size_t>(b - 1)].begin() + i * per);
      }
    }
  });
  if (progress)
    log_info("fisher: %d windows of %d tokens (%zu on this rank), mean NLL %.4f, gradients at %d blocks (%.1f s)", n, ctx,
             mine_.size(), loss_, L, t.seconds());
}

void FisherProbe::block_grads(int block, size_t i, BlockParams<float>& grads, float* dx) {
  const size_t per = static_cast<size_t>(ctx_) * model_.config().hidden_size;
  std::vector<float> xi(x_in_[static_cast<size_t>(block)].begin() + i * per, x_in_[static_cast<size_t>(block)].begin() + (i + 1) * per);
  std::vector<float> dx_own(dx ? 0 : per);
  pass_->forward(xi.data(), 1, ctx_);
  pass_->backward(dy_[static_cast<size_t>(block)].data() + i * per, grads, dx ? dx : dx_own.data());
}

std::vector<float> FisherProbe::window_gradient(int block, Linear l, int window) {
  const auto it = std::find(mine_.begin(), mine_.end(), window);
  QS_CHECK(it != mine_.end(), "fisher: window " << window << " is not on this rank");
  const BlockParams<float> p = block_params_from<float>(*model_.load_block(block));
  BlockParams<float> grads;
  pass_->set_params(p);
  block_grads(block, static_cast<size_t>(it - mine_.begin()), grads);
  const LinearRows lr = linear_rows(model_.config(), l);
  const float* g = grads.matrix(l).data() + static_cast<size_t>(lr.row0) * lr.in;
  return std::vector<float>(g, g + static_cast<size_t>(lr.out) * lr.in);
}

std::vector<double> FisherProbe::block_scores(int block, const std::vector<const std::vector<QuantizedLinear>*>& palette) {
  const ModelConfig& cfg = model_.config();
  const size_t K = palette.size();
  QS_ASSERT(K == 7, "fisher: a block has 7 linears");
  const size_t C = palette[0]->size();
  const BlockParams<float> p = block_params_from<float>(*model_.load_block(block));
  // Per window (this rank's): its gradient, squared, contracted with each candidate's (W − Q)².
  // Candidates are dequantized again per window, so memory holds one layer's, not the block's
  // palette (15 candidates of a 1B-class block would be 4 GB).
  std::vector<double> mine;
  BlockParams<float> grads;
  run_agreed(comm_, [&] {
    pass_->set_params(p);
    for (size_t i = 0; i < mine_.size(); ++i) {
      block_grads(block, i, grads);
      mine.push_back(static_cast<double>(mine_[i]));
      for (size_t k = 0; k < K; ++k) {
        const LinearRows lr = linear_rows(cfg, kOrder[k]);
        const float* W = p.matrix(kOrder[k]).data() + static_cast<size_t>(lr.row0) * lr.in;
        const float* g = grads.matrix(kOrder[k]).data() + static_cast<size_t>(lr.row0) * lr.in;
        const size_t ne = static_cast<size_t>(lr.out) * lr.in;
        QS_ASSERT(palette[k]->size() == C, "fisher: candidates per linear");
        for (size_t c = 0; c < C; ++c) {
          const QuantizedLinear& q = (*palette[k])[c];
          QS_ASSERT(q.out == lr.out && q.in == lr.in, "fisher: candidate shape of linear " << k);
          const std::vector<float> v = q.dequantize();
          double s = 0;
          for (size_t e = 0; e < ne; ++e) {
            const float d = W[e] - v[e];
            s += static_cast<double>(g[e]) * g[e] * (static_cast<double>(d) * d);
          }
          mine.push_back(s);
        }
      }
    }
  });
  // Gathered as (window, K·C sums) records and added in window order.
  const std::vector<double> all = comm_.allgatherv(mine);
  const size_t rec = 1 + K * C;
  QS_ASSERT(all.size() == rec * static_cast<size_t>(n_), "fisher: gathered records");
  std::vector<const double*> by_window(static_cast<size_t>(n_), nullptr);
  for (size_t r = 0; r < all.size(); r += rec) by_window[static_cast<size_t>(all[r])] = all.data() + r + 1;
  std::vector<double> out(K * C, 0.0);
  for (int w = 0; w < n_; ++w) {
    QS_ASSERT(by_window[static_cast<size_t>(w)], "fisher: window " << w << " missing");
    for (size_t j = 0; j < K * C; ++j) out[j] += by_window[static_cast<size_t>(w)][j];
  }
  for (double& v : out) v *= 0.5 * (ctx_ - 1) / n_;  // per token: see fisher.h
  return out;
}

}  // namespace qsweep
