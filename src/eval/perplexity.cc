// perplexity.cc — the evaluation loop: chunks of batches, blocks outer, windows inner.
#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/device_comm.h"
#include "eval/block_prefetch.h"
#include "eval/non_finite.h"
#include "io/quant_store.h"
#include "io/reference_hidden.h"
#include "model/cpu_ops.h"
#include "model/forward.h"

namespace qsweep {

EvalResult evaluate_perplexity(const LlamaWeights& model, const EvalWindows& w, const Comm& comm,
                               const EvalOptions& options) {
  const ModelConfig& cfg = model.config();
  QS_CHECK(options.batch >= 0, "--batch must be at least 1 (or 0: automatic)");
  EvalOptions opt = options;
  opt.batch = eval_batch_windows(options.batch, w.ctx);
  const int ctx = w.ctx;
  const int H = cfg.hidden_size;
  const int64_t n_batches = (w.n_windows + opt.batch - 1) / opt.batch;
  int64_t b_begin, b_end;
  block_range(n_batches, comm.rank(), comm.size(), &b_begin, &b_end);
  const int64_t win_begin = std::min(w.n_windows, b_begin * opt.batch);
  const int64_t win_end = std::min(w.n_windows, b_end * opt.batch);

  // Batches per chunk: as many as the activation budget allows (at least one); on a GPU the chunk
  // stays there for all its blocks and the budget applies per device (shared by its ranks). KL
  // without stored reference states runs the full-precision model alongside: two copies.
  const int copies = opt.kl_divergence && !opt.reference ? 2 : 1;
  const int64_t bytes_per_batch = static_cast<int64_t>(opt.batch) * ctx * H * 4 * copies;
  const int64_t batches_per_chunk = std::max<int64_t>(1, device_budget_share(comm, opt.activation_budget) / bytes_per_batch);

  std::unique_ptr<LlamaForward> fwd_ptr = make_forward(cfg);  // on this process's device
  LlamaForward& fwd = *fwd_ptr;
  Timer load_timer;
  HeadWeights head = HeadWeights::load(model);
  HeadWeights head_ref;  // full precision, for KL when lm_head is quantized
  if (opt.kl_divergence) head_ref = head;
  if (opt.quantized && opt.quantized->has_lm_head())
    opt.quantized->apply_lm_head(head.lm_head, cfg.vocab_size, cfg.hidden_size);
  fwd.hold(head);  // neither head changes from here on: a GPU keeps them resident
  if (opt.kl_divergence) fwd.hold(head_ref);
  double load_s = load_timer.seconds(), fwd_s = 0, flops = 0;

  const int S = w.scored_per_window();
  const bool kl = opt.kl_divergence;
  QS_CHECK(!kl || opt.quantized, "--kl-divergence needs --quantized (it compares against the full-precision model)");
  const ReferenceHidden* ref = kl ? opt.reference : nullptr;
  if (ref) QS_ASSERT((ref->shape() == ReferenceShape{w.n_windows, S, H}), "reference shape");
  const bool side_by_side = kl && !ref;  // run the full-precision model alongside
  std::vector<int64_t> ref_rows;
  std::vector<double> my_nll, pos_nll, my_kl, my_top1, pos_kl, pos_nll_base;
  std::vector<uint8_t> pos_top1;
  TokenKl my_tok;  // with KL: per scored token, in window order
  std::vector<float> x_ref;
  std::vector<int64_t> my_count;
  std::vector<float> x;
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  // The first non-finite activation or loss this rank met: agreed at the next poll, so every
  // rank stops at the same point with the same message (a rank alone may hold the bad window).
  std::string pending;

  const int64_t my_windows = win_end - win_begin;
  const int64_t total_steps =
      ((b_end - b_begin + batches_per_chunk - 1) / batches_per_chunk) * (cfg.num_hidden_layers + 1);
  Progress progress("eval", total_steps, "steps (chunk x block)");
  int64_t step = 0;
  double tokens_done = 0;

  // Every rank polls should_stop as often as the rank with the most chunks does.
  const int64_t max_chunks = ((n_batches + comm.size() - 1) / comm.size() + batches_per_chunk - 1) / batches_per_chunk;
  int64_t polls = 0;
  auto poll = [&] {
    ++polls;
    comm.agree_or_throw(pending);
    if (opt.should_stop && opt.should_stop(comm)) throw Interrupted();
  };
  BlockPrefetch prefetch(model, opt.prefetch > 0 || (opt.prefetch < 0 && current_device().kind == DeviceKind::Cuda));
  std::unique_ptr<BlockWeights> bw;  // the block being run; its storage is reused for later ones
  for (int64_t cb = b_begin; cb < b_end; cb += batches_per_chunk) {
    const int64_t ce = std::min(b_end, cb + batches_per_chunk);
    const int64_t w0 = cb * opt.batch, w1 = std::min(w.n_windows, ce * opt.batch);
    const int64_t nw = w1 - w0;
    x.resize(static_cast<size_t>(nw) * ctx * H);
    Timer t;
    model.embed(w.tokens.data() + w0 * ctx, nw * ctx, x.data());
    if (side_by_side) x_ref = x;
    try {  // on a GPU the chunk's hidden states stay there for all its blocks (CPU: nothing)
      fwd.hold_activations(x.data(), static_cast<int64_t>(x.size()));
      if (side_by_side) fwd.hold_activations(x_ref.data(), static_cast<int64_t>(x_ref.size()));
    } catch (const Error& e) {
      if (pending.empty()) pending = e.what();
    }
    load_s += t.seconds();
    for (int l = 0; l < cfg.num_hidden_layers; ++l) {
      poll();
      t.reset();
      bw = prefetch.take(l, std::move(bw));  // with prefetch: waits only for what is not loaded yet
      load_s += t.seconds();
      t.reset();
      for (int pass = side_by_side ? 0 : 1; pass < 2; ++pass) {
        if (pass == 1 && opt.quantized) opt.quantized->apply(*bw);
        fwd.hold(*bw);  // this pass's weights, unchanged until the next hold
        float* xs = pass == 0 ? x_ref.data() : x.data();
        for (int64_t b = cb; b < ce; ++b) {
          const int64_t bw0 = b * opt.batch, bw1 = std::min(w.n_windows, (b + 1) * opt.batch);
          const int n_seq = static_cast<int>(bw1 - bw0);
          float* xb = xs + (bw0 - w0) * ctx * H;
          if (!pending.empty()) continue;  // a failure waits for the next poll, where every rank stops
          const char* what = pass == 0 ? "eval (full-precision model)" : opt.quantized ? "eval (quantized model)" : "eval";
          try {  // the block, then the non-finite guard on its output (on a GPU: scanned there)
            pending = fwd.run_block_guarded(*bw, xb, n_seq, ctx, [&](const float* in, const float* out) {
              return check_block_output(what, fwd, *bw, l, in, out, n_seq, ctx, H);
            });
          } catch (const Error& e) {  // a device error on this rank: agreed at the next poll
            pending = e.what();
            continue;
          }
          flops += fwd.block_flops(n_seq, ctx);
        }
      }
      fwd_s += t.seconds();
      if (opt.progress) progress.update(++step, tokens_done + double(nw * ctx) * (l + 1) / cfg.num_hidden_layers);
    }
    try {  // the chunk's final hidden states back on the host for the head
      fwd.release_activations(x.data());
      if (side_by_side) fwd.release_activations(x_ref.data());
    } catch (const Error& e) {
      if (pending.empty()) pending = e.what();
    }
    // Head: NLL of the scored positions, one global batch at a time so that every rank
    // groups rows into the lm_head GEMM exactly alike (GEMM rounding may depend on grouping).
    t.reset();
    for (int64_t b = cb; b < ce && pending.empty(); ++b) try {
      const int64_t bw0 = b * opt.batch, bw1 = std::min(w.n_windows, (b + 1) * opt.batch);
      const int64_t nb = bw1 - bw0;
      rows.resize(static_cast<size_t>(nb) * S);
      targets.resize(rows.size());
      for (int64_t k = 0; k < nb; ++k)
        for (int p = 0; p < S; ++p) {
          const int pos = w.score_begin + p;
          rows[k * S + p] = (bw0 - w0 + k) * ctx + pos;
          targets[k * S + p] = w.tokens[(bw0 + k) * ctx + pos + 1];
        }
      pos_nll.resize(rows.size());
      const int64_t nr = static_cast<int64_t>(rows.size());
      if (opt.capture)
        for (int64_t k = 0; k < nb; ++k)
          opt.capture->write_window(bw0 + k, x.data() + ((bw0 - w0 + k) * ctx + w.score_begin) * H);
      if (kl) {
        pos_kl.resize(rows.size());
        pos_top1.resize(rows.size());
        pos_nll_base.resize(rows.size());
        if (ref) {  // the batch's windows are consecutive in the file: rows 0..nr-1
          ref_rows.resize(rows.size());
          for (int64_t i = 0; i < nr; ++i) ref_rows[i] = i;
          fwd.head_kl(head, x.data(), rows.data(), head_ref, ref->window(bw0), ref_rows.data(), targets.data(), nr,
                      pos_kl.data(), pos_top1.data(), pos_nll.data(), pos_nll_base.data());
        } else {
          fwd.head_kl(head, x.data(), rows.data(), head_ref, x_ref.data(), rows.data(), targets.data(), nr, pos_kl.data(),
                      pos_top1.data(), pos_nll.data(), pos_nll_base.data());
        }
        for (int64_t k = 0; k < nb; ++k) {
          double sk = 0, st = 0;
          for (int p = 0; p < S; ++p) {
            sk += pos_kl[k * S + p];
            st += pos_top1[k * S + p];
          }
          my_kl.push_back(sk);
          my_top1.push_back(st);
        }
        my_tok.kl.insert(my_tok.kl.end(), pos_kl.begin(), pos_kl.end());
        my_tok.nll.insert(my_tok.nll.end(), pos_nll.begin(), pos_nll.begin() + nr);
        my_tok.nll_base.insert(my_tok.nll_base.end(), pos_nll_base.begin(), pos_nll_base.end());
        for (int64_t i = 0; i < nr; ++i) my_tok.same_top.push_back(pos_top1[i]);
        flops += 2.0 * static_cast<double>(rows.size()) * cfg.vocab_size * H;
      } else {
        fwd.head_nll(head, x.data(), rows.data(), targets.data(), nr, pos_nll.data());
      }
      flops += 2.0 * static_cast<double>(rows.size()) * cfg.vocab_size * H;
      for (int64_t k = 0; k < nb; ++k) {
        double s = 0;
        for (int p = 0; p < S; ++p) s += pos_nll[k * S + p];
        if (pending.empty() && !std::isfinite(s))
          pending = "eval: non-finite loss (NLL " + std::to_string(s) + ") in window " + std::to_string(bw0 + k) +
                    ", layer lm_head: the final hidden states of block " + std::to_string(cfg.num_hidden_layers - 1) +
                    " are finite, the logits are not";
        if (pending.empty() && kl && !std::isfinite(my_kl[my_kl.size() - nb + k]))
          pending = "eval: non-finite KL-divergence in window " + std::to_string(bw0 + k) + ", layer lm_head";
        my_nll.push_back(s);
        my_count.push_back(S);
      }
    } catch (const Error& e) {  // a device error on this rank: agreed at the next poll
      pending = e.what();
    }
    fwd_s += t.seconds();
    tokens_done += double(nw * ctx);
    if (opt.progress) progress.update(++step, tokens_done);
  }
  while (polls < max_chunks * cfg.num_hidden_layers) poll();
  comm.agree_or_throw(pending);  // the last block's and the head's checks
  if (opt.progress && comm.rank() == 0) progress.finish(tokens_done);
  QS_ASSERT(static_cast<int64_t>(my_nll.size()) == my_windows, "window count");

  EvalResult r;
  r.window_nll = comm.allgatherv(my_nll);
  r.window_count = comm.allgatherv(my_count);
  QS_ASSERT(static_cast<int64_t>(r.window_nll.size()) == w.n_windows, "gathered windows");
  r.tokens_processed = w.n_windows * ctx;
  double sum_nll = 0, sum_mean = 0;
  for (int64_t k = 0; k < w.n_windows; ++k) {
    sum_nll += r.window_nll[k];
    sum_mean += r.window_nll[k] / static_cast<double>(r.window_count[k]);
    r.tokens_scored += r.window_count[k];
  }
  if (w.protocol == Protocol::Gptq) {
    r.mean_nll = sum_mean / static_cast<double>(w.n_windows);
  } else {
    r.mean_nll = sum_nll / static_cast<double>(r.tokens_scored);
  }
  r.perplexity = std::exp(r.mean_nll);
  if (kl) {
    r.window_kl = comm.allgatherv(my_kl);
    r.window_top1 = comm.allgatherv(my_top1);
    double sk = 0, st = 0;
    for (int64_t k = 0; k < w.n_windows; ++k) {
      sk += r.window_kl[k];
      st += r.window_top1[k];
    }
    r.kl_mean = sk / static_cast<double>(r.tokens_scored);
    r.top1_agree = st / static_cast<double>(r.tokens_scored);
    TokenKl all;  // every rank's tokens in window order (ranks hold consecutive windows)
    all.kl = comm.allgatherv(my_tok.kl);
    all.nll = comm.allgatherv(my_tok.nll);
    all.nll_base = comm.allgatherv(my_tok.nll_base);
    all.same_top = comm.allgatherv(my_tok.same_top);
    QS_ASSERT(static_cast<int64_t>(all.kl.size()) == r.tokens_scored, "gathered tokens");
    r.kl_stats = kl_statistics(all);
  }
  r.forward_seconds = comm.allreduce_max(fwd_s);
  r.load_seconds = comm.allreduce_max(load_s);
  std::vector<double> f = comm.allgatherv(std::vector<double>{flops});
  for (double v : f) r.flops += v;
  return r;
}

}  // namespace qsweep
