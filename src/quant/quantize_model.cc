// quantize_model.cc — the per-block pipeline: observe, reduce, quantize (distributed), apply,
// propagate.
#include "quant/quantize_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "eval/non_finite.h"
#include "model/cpu_ops.h"
#include "model/forward.h"
#include "dist/device_comm.h"
#include "dist/task_pool.h"
#include "quant/activation_store.h"
#include "quant/awq.h"
#include "quant/kl_probe.h"
#include "stats/block_buffers.h"
#include "stats/exact_gram.h"
#include "stats/spectrum.h"

namespace qsweep {

const QuantMethodDef* parse_method(const std::string& s) { return find_quant_method(s); }
const char* method_name(const QuantMethodDef* m) { return m ? m->name() : "rtn"; }

GridSpec QuantizeOptions::grid_for(const std::string& module) const {
  auto it = plan.find(module);
  return it == plan.end() ? grid : it->second;
}

void validate_quantize_options(const LlamaWeights& model, const QuantizeOptions& opt) {
  const ModelConfig& c = model.config();
  std::map<std::string, bool> known;
  for (int b = 0; b < c.num_hidden_layers; ++b)
    for (int l = 0; l < kNumLinear; ++l) {
      const std::string name = linear_module_name(b, static_cast<Linear>(l));
      known[name] = true;
      const GridSpec g = opt.grid_for(name);
      QS_CHECK(g.bits >= 2 && g.bits <= 8, name << ": bits " << g.bits << " out of range (expected 2..8)");
      // A group size that does not divide the width leaves a shorter last group per row
      // (in mod G columns), as the GPTQ reference code does: SmolLM2's 576 = 4 x 128 + 64.
      QS_CHECK(g.group_size == -1 || g.group_size > 0,
               name << ": group size " << g.group_size << " must be positive, or -1 for one group per row");
    }
  if (opt.quantize_lm_head) {
    const GridSpec g = opt.grid_for("lm_head");
    QS_CHECK(g.bits >= 2 && g.bits <= 8, "lm_head: bits " << g.bits << " out of range (expected 2..8)");
    QS_CHECK(g.group_size == -1 || g.group_size > 0,
             "lm_head: group size " << g.group_size << " must be positive, or -1 for one group per row");
  }
  known["lm_head"] = true;  // plans from qsweep recommend list it; used with --quantize-lm-head
  for (const auto& kv : opt.plan)
    QS_CHECK(known.count(kv.first), "--plan names '" << kv.first
                                                     << "', which is not a quantizable linear layer of the model "
                                                        "(decoder q/k/v/o/gate/up/down_proj only)");
  QS_CHECK(opt.calib_chunk >= 1, "--calib-chunk must be at least 1");
  QS_CHECK(opt.sparsity_threshold > 0, "--sparsity-threshold must be positive");
}

namespace {

void put_linear(Bytes& o, const LinearResult& r) {
  o.put<int>(r.q.out); o.put<int>(r.q.in);
  o.put<int>(r.q.grid.bits); o.put<int>(r.q.grid.group_size); o.put<bool>(r.q.grid.sym);
  o.put_vec(r.q.codes); o.put_vec(r.q.scales); o.put_vec(r.q.zeros); o.put_vec(r.q.g_idx);
  o.put(r.weight_mse); o.put(r.output_error); o.put(r.seconds); o.put(r.awq_alpha); o.put(r.gptq_damp); o.put(r.awq_clip_shrink);
  o.put(r.quant_seconds); o.put(r.metric_seconds);
  o.put<int>(r.dead_columns);
  o.put<int64_t>(r.refine_moves); o.put(r.refine_before); o.put(r.refine_after);
  o.put_vec(r.palette_error);
  o.put<uint64_t>(r.palette_q.size());
  for (const QuantizedLinear& q : r.palette_q) {
    o.put<int>(q.out); o.put<int>(q.in);
    o.put<int>(q.grid.bits); o.put<int>(q.grid.group_size); o.put<bool>(q.grid.sym);
    o.put_vec(q.codes); o.put_vec(q.scales); o.put_vec(q.zeros); o.put_vec(q.g_idx);
  }
}
void get_linear(Bytes& i, LinearResult& r) {
  r.q.out = i.get<int>(); r.q.in = i.get<int>();
  r.q.grid.bits = i.get<int>(); r.q.grid.group_size = i.get<int>(); r.q.grid.sym = i.get<bool>();
  r.q.codes = i.get_vec<uint8_t>(); r.q.scales = i.get_vec<float>(); r.q.zeros = i.get_vec<int32_t>();
  r.q.g_idx = i.get_vec<int32_t>();
  r.weight_mse = i.get<double>(); r.output_error = i.get<double>(); r.seconds = i.get<double>();
  r.awq_alpha = i.get<double>(); r.gptq_damp = i.get<double>(); r.awq_clip_shrink = i.get<double>();
  r.quant_seconds = i.get<double>(); r.metric_seconds = i.get<double>(); r.dead_columns = i.get<int>();
  r.refine_moves = i.get<int64_t>(); r.refine_before = i.get<double>(); r.refine_after = i.get<double>();
  r.palette_error = i.get_vec<double>();
  r.palette_q.resize(i.get<uint64_t>());
  for (QuantizedLinear& q : r.palette_q) {
    q.out = i.get<int>(); q.in = i.get<int>();
    q.grid.bits = i.get<int>(); q.grid.group_size = i.get<int>(); q.grid.sym = i.get<bool>();
    q.codes = i.get_vec<uint8_t>(); q.scales = i.get_vec<float>(); q.zeros = i.get_vec<int32_t>(); q.g_idx = i.get_vec<int32_t>();
  }
}

// The test hook documented in quantize_model.h: QSWEEP_TEST_FAIL_LAYER=<module>[@<method>] makes
// the rank that quantizes that module throw, as a failed check on the owner would.
void maybe_fail_for_test(const std::string& module, const QuantMethodDef* method, const Comm& comm) {
  const char* v = std::getenv("QSWEEP_TEST_FAIL_LAYER");
  if (!v || !*v) return;
  std::string target = v, want_method;
  const size_t at = target.find('@');
  if (at != std::string::npos) {
    want_method = target.substr(at + 1);
    target.resize(at);
  }
  if (target != module || (!want_method.empty() && want_method != method_name(method))) return;
  QS_THROW(module << ": failure injected by QSWEEP_TEST_FAIL_LAYER on rank " << comm.rank() << " of "
                  << comm.size() << ", the rank that quantizes it");
}

// Non-finite reduced statistics of a block (one scan per input after the reduction; identical
// on every rank, so every rank throws alike). Of Σxxᵀ only the diagonal is scanned: with a finite
// diagonal every entry is finite (|G_ab| ≤ √(G_aa G_bb)).
bool gram_diagonal_finite(const std::vector<double>& g, int channels) {
  if (g.empty()) return true;
  for (int c = 0; c < channels; ++c)
    if (!std::isfinite(g[static_cast<size_t>(c) * channels + c])) return false;
  return true;
}

void check_stats_finite(const char* what, int blk, const BlockCalibStats& st) {
  const BlockInput inputs[] = {BlockInput::Qkv, BlockInput::O, BlockInput::GateUp, BlockInput::Down};
  const Linear first[] = {Linear::Q, Linear::O, Linear::Gate, Linear::Down};
  for (int i = 0; i < kNumBlockInputs; ++i) {
    const InputStats& s = st.input(inputs[i]);
    const bool ok = all_finite(s.sum_sq) && all_finite(s.sum_abs) && all_finite(s.max_abs) && gram_diagonal_finite(s.gram, s.channels) &&
                    std::isfinite(s.s1) && std::isfinite(s.s2) && std::isfinite(s.s3) && std::isfinite(s.s4);
    QS_CHECK(ok, what << ": non-finite activation statistics in block " << blk << ", layer "
                      << linear_module_name(blk, first[i]) << " (input " << block_input_name(inputs[i]) << ")");
  }
  QS_CHECK(all_finite(st.entropy_sum), what << ": non-finite attention entropy in block " << blk << ", layer "
                                            << linear_module_name(blk, Linear::O) << " (the attention's softmax)");
}

// Non-finite scales or errors of a quantized layer (checked once per layer, after the broadcast).
void check_linear_finite(int blk, const LinearResult& r) {
  const std::string where = blk < 0 ? "layer " + r.name : "block " + std::to_string(blk) + ", layer " + r.name;
  bool scales_ok = true;
  for (float v : r.q.scales) scales_ok &= std::isfinite(v);
  QS_CHECK(scales_ok, "quantize: non-finite scale in " << where);
  QS_CHECK(std::isfinite(r.weight_mse) && std::isfinite(r.output_error),
           "quantize: non-finite error in " << where << " (weight MSE " << r.weight_mse << ", output error "
                                              << r.output_error << ")");
}

// The method's per-layer work on M (AWQ: the scaled weights, whose input scales are `cs`).
void quantize_weights(LinearResult& res, const float* M, int out, int in, const InputStats& st, const GridSpec& g,
                      const std::vector<float>& cs, bool clip_allowed, const QuantizeOptions& opt,
                      const QuantizedLinear* trained = nullptr) {
  const QuantMethodDef* m = opt.method ? opt.method : parse_method("rtn");
  m->quantize_layer(res, LayerWork{M, out, in, st, cs, g, clip_allowed, opt, trained});
}

// --refine: greedy rounding on the codes of `res.q`, which approximate M (AWQ: the scaled weights,
// whose inputs are x / cs). x̄ and Σxxᵀ are those of the inputs the layer sees.
void refine_weights(LinearResult& res, const float* M, int in, const InputStats& st, const std::vector<float>& cs,
                    const QuantizeOptions& opt) {
  if (opt.refine == Refine::None) return;
  RefineResult rr;
  if (opt.refine == Refine::Greedy) {
    std::vector<double> xbar(static_cast<size_t>(in));
    for (int c = 0; c < in; ++c) xbar[static_cast<size_t>(c)] = st.sum[static_cast<size_t>(c)] / st.tokens / (cs.empty() ? 1.0 : cs[static_cast<size_t>(c)]);
    rr = refine_greedy(res.q, M, xbar, opt.outlier_percent);
  } else if (cs.empty()) {
    rr = refine_greedy_exact(res.q, M, st.gram, opt.refine_damp);
  } else {
    std::vector<double> gs = st.gram;
    for (int a = 0; a < in; ++a)
      for (int b = 0; b < in; ++b) gs[static_cast<size_t>(a) * in + b] /= static_cast<double>(cs[static_cast<size_t>(a)]) * cs[static_cast<size_t>(b)];
    rr = refine_greedy_exact(res.q, M, gs, opt.refine_damp);
  }
  res.refine_moves = rr.moves;
  res.refine_before = rr.before;
  res.refine_after = rr.after;
}

// Weight MSE and output error of the effective weight diag(rs)·Ŵ·diag(cs)⁻¹ against the
// original W on the calibration inputs (empty rs/cs: no AWQ transform).
void error_metrics(LinearResult& res, const float* W, int out, int in, const InputStats& st,
                   const std::vector<float>& rs, const std::vector<float>& cs) {
  std::vector<float> eff = res.q.dequantize();
  for (int r = 0; r < out; ++r)
    for (int c = 0; c < in; ++c) {
      float& v = eff[static_cast<size_t>(r) * in + c];
      if (!rs.empty()) v *= rs[r];
      if (!cs.empty()) v /= cs[c];
    }
  double se = 0;
  for (size_t k = 0; k < eff.size(); ++k) {
    const double d = static_cast<double>(W[k]) - eff[k];
    se += d * d;
  }
  res.weight_mse = se / eff.size();
  res.output_error = output_sq_error(W, eff.data(), out, in, st.gram) / (st.tokens * out);
}

const Linear kAll[kNumLinear] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};

}  // namespace

QuantizeSummary quantize_model(const LlamaWeights& model, const CalibWindows& calib,
                               const QuantizeOptions& opt, const Comm& comm, QuantizeSink* sink) {
  validate_quantize_options(model, opt);
  Timer total;
  const ModelConfig& cfg = model.config();
  const int H = cfg.hidden_size, T = calib.seq_len;
  const int64_t n_chunks = (calib.n + opt.calib_chunk - 1) / opt.calib_chunk;
  int64_t c0, c1;
  block_range(n_chunks, comm.rank(), comm.size(), &c0, &c1);
  const int64_t s0 = std::min<int64_t>(calib.n, c0 * opt.calib_chunk);
  const int64_t s1 = std::min<int64_t>(calib.n, c1 * opt.calib_chunk);
  // The rank's hidden states between blocks: in memory within the budget, else a scratch file.
  ActivationStore acts(s1 - s0, T, H, opt.activation_budget, opt.scratch_dir);
  const double act_mb = static_cast<double>(acts.bytes()) / (1 << 20);
  if (acts.spilled())
    log_info("activations: %.1f MiB per rank exceed --activation-budget-mb %lld: kept in a scratch file in %s "
             "(read and written a chunk at a time, %s per block)",
             act_mb, static_cast<long long>(opt.activation_budget >> 20), opt.scratch_dir.c_str(),
             opt.propagate ? "two reads and one write" : "one read and one write");
  else
    log_info("activations: %.1f MiB per rank, in memory (--activation-budget-mb %lld)", act_mb,
             static_cast<long long>(opt.activation_budget >> 20));
  // A method that trains on the block's windows (blockap) also needs the full-precision model's
  // hidden states: a second store, and the rank's windows in memory while a block trains.
  const bool block_data = opt.method && opt.method->needs_block_data() && !opt.stats_only;
  std::unique_ptr<ActivationStore> acts_fp;
  if (block_data) {
    QS_CHECK(opt.palette.empty() && !opt.quantize_lm_head,
             method_name(opt.method) << ": sensitivity scoring and --quantize-lm-head are not supported");
    QS_CHECK(opt.propagate, method_name(opt.method) << " trains on the quantized model's inputs: --no-propagate does not apply");
    QS_CHECK(opt.blockap.val_windows < calib.n, "--val-windows " << opt.blockap.val_windows << " of " << calib.n
                                                                 << " calibration windows: at least one window must be left for training");
    const double need = 3.0 * static_cast<double>(s1 - s0) * T * H * 4;
    QS_CHECK(need <= static_cast<double>(opt.activation_budget),
             method_name(opt.method) << " keeps the rank's " << (s1 - s0) << " windows three times in memory while a block trains ("
                                     << need / 1048576 << " MB), more than --activation-budget-mb "
                                     << (opt.activation_budget >> 20) << ": use more ranks, fewer --n-calib or a larger budget");
    acts_fp = std::make_unique<ActivationStore>(s1 - s0, T, H, opt.activation_budget, opt.scratch_dir);
  }
  std::vector<float> chunk_in, chunk_out;
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t a = c * opt.calib_chunk, b = std::min<int64_t>(calib.n, a + opt.calib_chunk);
    chunk_out.resize(static_cast<size_t>((b - a) * T) * H);
    model.embed(calib.tokens.data() + a * T, (b - a) * T, chunk_out.data());
    acts.write(a - s0, b - a, chunk_out.data());
    if (acts_fp) acts_fp->write(a - s0, b - a, chunk_out.data());
  }
  std::unique_ptr<LlamaForward> fwd_ptr = make_forward(cfg);  // on this process's device
  LlamaForward& fwd = *fwd_ptr;
  const char* stage = opt.stats_only ? "calibrate" : "quantize";
  // On a GPU the rank's hidden states stay on the device for the whole run, as many whole chunks
  // of them (from the rank's first) as fit its share of --activation-budget-mb (the budget applies
  // per device: the ranks bound to a GPU share it), less one chunk's scratch when the
  // full-precision outputs must not overwrite them (propagation). The chunks beyond it stay in host
  // memory (or the scratch file) and move up and down at every block, as do all of them when a
  // method trains on the windows on the host (blockap). The arithmetic is the same either way.
  float* const store = acts.memory();
  std::vector<float> scratch;
  int64_t resident_seqs = 0;  // the rank's first sequences, on the device from here to the end
  if (current_device().kind == DeviceKind::Cuda) {  // the same kind on every rank: all call the collective
    const int64_t share = device_budget_share(comm, opt.activation_budget);
    const int64_t chunk_bytes = static_cast<int64_t>(opt.calib_chunk) * T * H * 4;
    const int64_t room = share - (opt.propagate ? chunk_bytes : 0);
    if (store && !block_data && room > 0)
      resident_seqs = std::min(s1 - s0, room / chunk_bytes * opt.calib_chunk);
    std::string error;
    try {
      if (resident_seqs > 0) {
        fwd.hold_activations(store, resident_seqs * T * H);
        if (opt.propagate) {
          scratch.resize(static_cast<size_t>(opt.calib_chunk) * T * H);
          fwd.hold_activations(scratch.data(), static_cast<int64_t>(scratch.size()));
        }
      }
    } catch (const Error& e) {  // the GPU has less free memory than the budget: every chunk moves per block
      log_warn("activations on %s: not kept on the GPU (%s); every chunk moves per block — lower "
               "--activation-budget-mb to keep part of them there", current_device().description.c_str(), e.what());
      scratch.clear();
      resident_seqs = 0;  // residency is per rank: it never changes the arithmetic
      try {
        fwd.release_activations(store);  // if it was held: the same values back in host memory
      } catch (const Error& e2) {
        error = e2.what();
      }
    }
    comm.agree_or_throw(error);
    log_info("activations on %s: %lld of this rank's %lld windows resident for the run, the rest moved per chunk "
             "(--activation-budget-mb %lld per device: %.1f MiB for this rank)",
             current_device().description.c_str(), static_cast<long long>(resident_seqs),
             static_cast<long long>(s1 - s0), static_cast<long long>(opt.activation_budget >> 20),
             static_cast<double>(share) / 1048576);
  }
  // Runs the rank's chunks through block `blk` (writing the outputs over the inputs when
  // `write_back`), scanning each chunk's output; the ranks then agree on the first non-finite
  // activation any of them met (collective: every rank calls it alike).
  auto run_chunks = [&](int blk, const BlockWeights& w, LinearObserver* obs, BlockCalibStats* stats,
                        bool write_back, const std::string& what) {
    std::string error;
    fwd.hold(w);  // w does not change while its chunks run: a GPU uploads it once
    for (int64_t c = c0; c < c1 && error.empty(); ++c) {
      const int64_t a = c * opt.calib_chunk, b = std::min<int64_t>(calib.n, a + opt.calib_chunk);
      if (stats) stats->begin_chunk();
      if (b - s0 <= resident_seqs) {  // on the device: in place, or into the scratch when the store must not change
        const int nb = static_cast<int>(b - a);
        float* xs = store + static_cast<size_t>(a - s0) * T * H;
        float* xb = write_back ? xs : scratch.data();
        try {
          if (!write_back) fwd.copy_activations(xs, xb, static_cast<int64_t>(nb) * T * H);
          error = fwd.run_block_guarded(w, xb, nb, T, [&](const float* in, const float* out) {
            return check_block_output(what, fwd, w, blk, in, out, nb, T, H);
          }, obs);
        } catch (const Error& e) {
          error = e.what();
        }
        continue;
      }
      chunk_in.resize(static_cast<size_t>((b - a) * T) * H);
      acts.read(a - s0, b - a, chunk_in.data());
      chunk_out = chunk_in;
      try {
        fwd.run_block(w, chunk_out.data(), static_cast<int>(b - a), T, obs);
      } catch (const Error& e) {  // a device error on this rank: the ranks agree below
        error = e.what();
        break;
      }
      if (error.empty())
        error = check_block_output(what, fwd, w, blk, chunk_in.data(), chunk_out.data(), static_cast<int>(b - a), T, H);
      if (write_back) acts.write(a - s0, b - a, chunk_out.data());
    }
    comm.agree_or_throw(error);
  };

  QuantizeSummary summary;
  BlockStatsCache* cache = opt.fp_stats_cache && !opt.propagate && !opt.quantize_lm_head && !opt.stats_only && !opt.awq_praq
                               ? opt.fp_stats_cache
                               : nullptr;
  const bool cached = cache && cache->complete();  // no calibration forward pass at all
  Progress progress(stage, cfg.num_hidden_layers, "blocks", 0.0);
  std::unique_ptr<BlockWeights> w;  // the previous block's storage is reused (load_block)
  BlockBuffers buffers;             // and its statistics' large arrays (stats/block_buffers.h)
  for (int blk = 0; blk < cfg.num_hidden_layers; ++blk) {
    if (opt.should_stop && opt.should_stop(comm)) throw Interrupted();
    Timer bt;
    w = model.load_block(blk, std::move(w));
    summary.load_seconds += bt.seconds();
    std::unique_ptr<BlockCalibStats> block_stats;  // this block's own statistics, unless cached
    const BlockCalibStats* sp = cached ? cache->get(blk) : nullptr;
    if (!sp) {
      PraqSpec praq;
      if (opt.awq_praq && opt.method && opt.method->transforms_block() && !opt.stats_only) {
        praq.w_gate = w->linear(Linear::Gate);
        praq.w_up = w->linear(Linear::Up);
        praq.inter = w->out_features(Linear::Gate);
        praq.hidden = w->in_features(Linear::Gate);
        praq.noise_std = opt.noise_std;
        praq.samples = opt.noise_samples;
        praq.seed = 0x70726171;  // fixed: the draws depend on (block, chunk, draw) only
        praq.block = blk;
      }
      Timer rt;
      auto own = std::make_unique<BlockCalibStats>(cfg, T, opt.sparsity_threshold, !opt.stats_only,
                                                   ChunkRange{n_chunks, c0, c1}, praq.w_gate ? &praq : nullptr,
                                                   cache ? nullptr : &buffers);  // cached stats outlive the pool
      summary.reduce_seconds += rt.seconds();
      Timer ft;
      // With propagation the full-precision outputs are not needed: the quantized block's are.
      run_chunks(blk, *w, own.get(), own.get(), !opt.propagate, stage);
      summary.forward_seconds += ft.seconds();
      rt.reset();
      own->reduce(comm);
      check_stats_finite(stage, blk, *own);
      summary.reduce_seconds += rt.seconds();
      if (cache) cache->put(blk, std::move(own));
      sp = cache ? cache->get(blk) : own.get();
      block_stats = std::move(own);
    }
    const BlockCalibStats& stats = *sp;
    if (!stats.praq_importance.empty() && opt.progress) {
      const InputStats& gu = stats.input(BlockInput::GateUp);
      std::vector<double> l2(gu.sum_sq.size());
      for (size_t c = 0; c < l2.size(); ++c) l2[c] = std::sqrt(gu.sum_sq[c] / gu.tokens);
      log_info("quantize: block %d: Spearman(PRAQ importance, AWQ L2 salience) over the gate/up input channels %.4f", blk,
               spearman(stats.praq_importance, l2));
    }
    if (opt.stats_only) {
      BlockResult br;
      br.index = blk;
      br.input_norm = w->input_norm;
      br.post_norm = w->post_norm;
      br.stats = &stats;
      br.seconds = bt.seconds();
      if (sink) sink->on_block(br);
      if (opt.progress) progress.update(blk + 1);
      continue;
    }

    // The method's block stage (AWQ): quantized matrix M = diag(row_scale) W diag(col_scale).
    BlockTransform t;
    t.col_scale.assign(kNumLinear, {});
    t.row_scale.assign(kNumLinear, {});
    t.alpha.assign(kNumLinear, std::numeric_limits<double>::quiet_NaN());
    t.original.assign(kNumLinear, {});  // pre-transform weights, for the error metrics
    if (opt.method && opt.method->transforms_block()) {
      t.col_scale.assign(kNumLinear, {});
      t.row_scale.assign(kNumLinear, {});
      t.alpha.assign(kNumLinear, std::numeric_limits<double>::quiet_NaN());
      t.original.assign(kNumLinear, {});
      Timer tt;
      opt.method->transform_block(BlockContext{blk, cfg, *w, stats, opt, comm}, t);
      summary.transform_seconds += tt.seconds();
    } else if (block_data) {
      // The rank's windows: the quantized model's inputs (propagated so far) and the
      // full-precision block's outputs on the full-precision inputs, which become the next
      // block's full-precision inputs.
      const size_t per = static_cast<size_t>(T) * H;
      std::vector<float> x_q(static_cast<size_t>(s1 - s0) * per), y_fp(x_q.size());
      acts.read(0, s1 - s0, x_q.data());
      acts_fp->read(0, s1 - s0, y_fp.data());
      fwd.hold(*w);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t a = c * opt.calib_chunk, b = std::min<int64_t>(calib.n, a + opt.calib_chunk);
        fwd.run_block(*w, y_fp.data() + static_cast<size_t>(a - s0) * per, static_cast<int>(b - a), T);
      }
      acts_fp->write(0, s1 - s0, y_fp.data());
      const BlockData bd{x_q, y_fp, static_cast<int>(s0), static_cast<int>(s1 - s0), static_cast<int>(calib.n), T};
      BlockContext bc{blk, cfg, *w, stats, opt, comm};
      bc.data = &bd;
      Timer tt;
      opt.method->transform_block(bc, t);
      summary.transform_seconds += tt.seconds();
    }
    const std::vector<std::vector<float>>& col_scale = t.col_scale;
    const std::vector<std::vector<float>>& row_scale = t.row_scale;
    const std::vector<double>& awq_alpha = t.alpha;
    const std::vector<std::vector<float>>& original = t.original;
    const std::vector<QuantizedLinear>& trained = t.trained;

    // Quantize every linear (owner computes, all receive).
    std::vector<double> cost;
    for (Linear l : kAll) {
      const double o = w->out_features(l), i = w->in_features(l);
      cost.push_back((opt.method ? opt.method->layer_cost(o, i) : o * i) * (1.0 + opt.palette.size()));
    }
    const double before_layers = bt.seconds();
    double own_layer_seconds = 0;  // this rank's quantization + metrics, so that the rest is the hand-over
    auto results = run_distributed(cost, [&](size_t k) {
      Timer t;
      const Linear l = kAll[k];
      const int li = static_cast<int>(l);
      const int out = w->out_features(l), in = w->in_features(l);
      const std::string name = linear_module_name(blk, l);
      maybe_fail_for_test(name, opt.method, comm);
      const GridSpec g = opt.grid_for(name);
      const InputStats& st = stats.input(input_of(l));
      const float* M = w->linear(l);  // AWQ: already scaled
      const float* W = original[li].empty() ? M : original[li].data();
      const auto& cs = col_scale[li];
      const auto& rs = row_scale[li];
      LinearResult res;
      res.name = name;
      Timer tq;
      quantize_weights(res, M, out, in, st, g, cs, l != Linear::Q && l != Linear::K, opt,
                       trained.empty() ? nullptr : &trained[static_cast<size_t>(li)]);
      refine_weights(res, M, in, st, cs, opt);
      res.quant_seconds = tq.seconds();
      Timer tm;
      res.awq_alpha = awq_alpha[li];
      error_metrics(res, W, out, in, st, rs, cs);
      for (const GridSpec& pg : opt.palette) {  // sensitivity: the same layer on each palette grid
        LinearResult alt;
        quantize_weights(alt, M, out, in, st, pg, cs, false, opt);
        refine_weights(alt, M, in, st, cs, opt);
        error_metrics(alt, W, out, in, st, rs, cs);
        res.palette_error.push_back(alt.output_error);
        if (opt.keep_palette_weights) res.palette_q.push_back(std::move(alt.q));
      }
      res.metric_seconds = tm.seconds();
      res.seconds = t.seconds();
      own_layer_seconds += res.seconds;
      Bytes o;
      put_linear(o, res);
      return o;
    }, comm);

    BlockResult br;
    br.index = blk;
    for (size_t k = 0; k < kNumLinear; ++k) {
      LinearResult r;
      r.name = linear_module_name(blk, kAll[k]);
      get_linear(results[k], r);
      check_linear_finite(blk, r);
      const std::vector<float> deq = r.q.dequantize();
      w->set_linear(kAll[k], deq.data());
      summary.quantized_bits += quantized_bits(r.q.out, r.q.in, r.q.grid);
      summary.quantized_params += double(r.q.out) * r.q.in;
      summary.quant_seconds += r.quant_seconds;
      summary.metric_seconds += r.metric_seconds;
      br.linears.push_back(std::move(r));
    }
    br.input_norm = w->input_norm;
    br.post_norm = w->post_norm;
    br.train_loss = t.train_loss;
    br.val_loss = t.val_loss;
    br.train_epochs = t.epochs;
    br.attrs = t.attrs;
    summary.output_seconds += bt.seconds() - before_layers - own_layer_seconds;
    if (opt.propagate) {
      Timer ft;
      run_chunks(blk, *w, nullptr, nullptr, true, "quantize (the quantized block, propagating)");
      summary.forward_seconds += ft.seconds();
    }
    br.stats = &stats;
    br.seconds = bt.seconds();
    Timer st;
    if (sink) sink->on_block(br);
    summary.output_seconds += st.seconds();
    if (opt.progress) progress.update(blk + 1);
  }
  if (resident_seqs > 0) {  // the last block's outputs back in host memory (the lm_head's calibration reads them)
    std::string error;
    try {
      fwd.release_activations(store);
      if (!scratch.empty()) fwd.release_activations(scratch.data());
    } catch (const Error& e) {
      error = e.what();
    }
    comm.agree_or_throw(error);
  }
  if (opt.progress) progress.finish();
  if (opt.quantize_lm_head) {
    // The head's input: final RMSNorm of the (propagated) last hidden states, with the family's
    // scaling (head_input: what lm_head receives in evaluation), Gram per chunk.
    const std::vector<float> fnorm = model.load_final_norm();
    ExactGram gram(H);
    std::vector<float> xn;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t a = c * opt.calib_chunk, b = std::min<int64_t>(calib.n, a + opt.calib_chunk);
      const int64_t rows = (b - a) * T;
      xn.resize(static_cast<size_t>(rows) * H);
      chunk_in.resize(static_cast<size_t>(rows) * H);
      acts.read(a - s0, b - a, chunk_in.data());
      head_input(cfg, fnorm.data(), chunk_in.data(), xn.data(), rows);
      gram.add(xn.data(), rows);
    }
    InputStats head_in;
    head_in.channels = H;
    const int status = gram.agree_status(comm);
    QS_CHECK(status != 2, "quantize: Σxxᵀ of layer lm_head's input has an entry of at least 2^62 in one chunk");
    gram.allreduce(comm);
    head_in.gram = gram.to_double(status);
    QS_CHECK(gram_diagonal_finite(head_in.gram, H),
             "quantize: non-finite statistics of layer lm_head (its input: the final norm of block "
                 << cfg.num_hidden_layers - 1 << "'s output)");
    head_in.tokens = static_cast<double>(calib.n) * T;
    const GridSpec g = opt.grid_for("lm_head");
    auto res = run_distributed({1.0}, [&](size_t) {
      Timer t;
      const std::vector<float> W = model.load_lm_head();
      const int out = cfg.vocab_size, in = H;
      maybe_fail_for_test("lm_head", opt.method, comm);
      LinearResult r;
      r.name = "lm_head";
      quantize_weights(r, W.data(), out, in, head_in, g, {}, false, opt);  // AWQ: plain RTN, as AutoAWQ
      error_metrics(r, W.data(), out, in, head_in, {}, {});
      r.seconds = t.seconds();
      Bytes o;
      put_linear(o, r);
      return o;
    }, comm);
    LinearResult r;
    r.name = "lm_head";
    get_linear(res[0], r);
    check_linear_finite(-1, r);
    summary.quantized_bits += quantized_bits(r.q.out, r.q.in, r.q.grid);
    summary.quantized_params += double(r.q.out) * r.q.in;
    if (sink) sink->on_lm_head(r);
  }
  // Everything not quantized stays at its stored dtype.
  for (const auto& name : model.checkpoint().tensor_names()) {
    if (name.find("_proj.weight") != std::string::npos && name.rfind("model.layers.", 0) == 0) continue;
    if (opt.quantize_lm_head && name == "lm_head.weight") continue;
    const TensorInfo* t = model.checkpoint().find(name);
    summary.other_bytes += static_cast<double>(t->numel()) * dtype_size(t->dtype);
  }
  summary.seconds = total.seconds();
  return summary;
}

}  // namespace qsweep
