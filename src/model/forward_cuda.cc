// forward_cuda.cc — LlamaForward on a GPU: adapts kernels/ BlockForward (qsweep/cuda/
// block_forward.h) to the interface every stage uses. Weights go to the device at the first use
// after a hold and stay while held (eval, task scoring and calibration hold each block once);
// activations cross as host arrays per call, observers get host copies of the linear inputs.
// CUDA, cuBLAS and allocation failures become qsweep::Error with the engine's message.
#include "model/forward_cuda.h"

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "model/forward.h"

#ifdef QSWEEP_WITH_CUDA
#include <algorithm>
#include <exception>
#include <functional>
#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "qsweep/cuda/backend.h"
#include "qsweep/cuda/block_forward.h"

namespace qsweep {

namespace {

template <typename F>
void guarded(const char* what, F&& f) {
  cuda_guarded(what, f);
}

const float* opt(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

// Rows per head GEMM on the GPU: 1 GiB of fp32 logits (twice for KL). The CPU's 64 MiB slices
// (head_rows_per_slice: 130 rows of a 128k vocabulary) made the 1b preset's lm_head a thousand
// skinny GEMMs, each followed by a synchronisation, at half of SGEMM's throughput on an H200.
int64_t device_head_rows(int vocab) { return std::max<int64_t>(64, (int64_t(256) << 20) / vocab); }

class CudaForward : public LlamaForward {
 public:
  CudaForward(const ModelConfig& cfg, int ordinal) : LlamaForward(cfg), ordinal_(ordinal) {
    const cuda::BlockDims d = cuda_block_dims(cfg);
    guarded("engine", [&] { engine_ = std::make_unique<cuda::BlockForward>(d, ordinal); });
  }

  ~CudaForward() override {
    for (const Region& r : regions_) engine_->region_free(r.dev);  // not copied back: the stage failed
  }

  const char* device_name() const override { return "cuda"; }

  void hold(const BlockWeights& w) override {
    held_block_ = &w;
    held_data_ = w.qkv.data();
    block_stale_ = true;
  }
  void hold(const HeadWeights& h) override {
    held_heads_.insert({&h, h.lm_head.data()});
    for (Slot& s : slots_)
      if (s.resident == &h) s.stale = true;
  }

  void run_block(const BlockWeights& w, float* x, int n_seq, int seq_len, LinearObserver* observer,
                 const SeqPacking* packing) override {
    QS_ASSERT(!packing || cfg_.sliding_window == 0 || seq_len <= cfg_.sliding_window, "packed sequences with a sliding window");
    guarded("forward", [&] {
      prepare(w, seq_len);
      run_engine(w, x, resident(x, static_cast<int64_t>(n_seq) * seq_len * cfg_.hidden_size), n_seq, seq_len,
                 observer, packing);
    });
  }

  void hold_activations(float* x, int64_t n) override {
    release_activations(x);
    guarded("hidden states", [&] { regions_.push_back({x, n, engine_->region_create(x, static_cast<size_t>(n))}); });
  }

  void release_activations(float* x) override {
    for (size_t i = 0; i < regions_.size(); ++i)
      if (regions_[i].host == x) {
        const Region r = regions_[i];
        regions_.erase(regions_.begin() + static_cast<std::ptrdiff_t>(i));
        guarded("hidden states", [&] {
          struct Free {  // released even when the copy back fails
            cuda::BlockForward& e;
            float* d;
            ~Free() { e.region_free(d); }
          } free_it{*engine_, r.dev};
          engine_->region_download(r.host, r.dev, static_cast<size_t>(r.n));
        });
        return;
      }
  }

  std::string run_block_guarded(const BlockWeights& w, float* x, int n_seq, int seq_len, const OutputCheck& check,
                                LinearObserver* observer, const SeqPacking* packing) override {
    const int64_t n = static_cast<int64_t>(n_seq) * seq_len * cfg_.hidden_size;
    float* d = resident(x, n);
    if (!d) return LlamaForward::run_block_guarded(w, x, n_seq, seq_len, check, observer, packing);
    QS_ASSERT(!packing || cfg_.sliding_window == 0 || seq_len <= cfg_.sliding_window, "packed sequences with a sliding window");
    std::vector<float> in, out;
    guarded("forward", [&] {
      prepare(w, seq_len);
      const float* kept = engine_->keep_copy(d, static_cast<size_t>(n));
      run_engine(w, x, d, n_seq, seq_len, observer, packing);
      if (engine_->all_finite(d, static_cast<size_t>(n))) return;
      in.resize(static_cast<size_t>(n));  // something is not finite: bring both back for the trace
      out.resize(in.size());
      engine_->region_download(in.data(), kept, in.size());
      engine_->region_download(out.data(), d, out.size());
    });
    return in.empty() ? std::string() : check(in.data(), out.data());
  }

  void head_kl(const HeadWeights& h, const float* x, const int64_t* rows, const HeadWeights& h_ref, const float* x_ref,
               const int64_t* rows_ref, const int32_t* targets, int64_t n, double* kl, uint8_t* top1, double* nll,
               double* nll_base) override {
    guarded("head", [&] {
      const int64_t chunk = device_head_rows(cfg_.vocab_size);
      for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t m = std::min(chunk, n - i0);
        const int slot = slot_of(h), slot_ref = slot_of(h_ref);
        const float* xq = gather(x, rows + i0, m);
        const float* xr = gather(x_ref, rows_ref + i0, m, rows_ref_);
        engine_->head_kl(slot, xq, slot_ref, xr, m, targets + i0, kl + i0, top1 + i0, nll + i0, nll_base + i0);
      }
    });
  }

  void copy_activations(const float* src, float* dst, int64_t n) override {
    const float* s = resident(src, n);
    float* d = resident(dst, n);
    if (!s && !d) return LlamaForward::copy_activations(src, dst, n);
    guarded("hidden states", [&] { engine_->copy(d ? d : dst, s ? s : src, static_cast<size_t>(n)); });
  }

  void head_logits(const HeadWeights& h, const float* x, const int64_t* rows, int64_t n, float* logits) override {
    guarded("head", [&] { engine_->head_logits(slot_of(h), gather(x, rows, n), n, logits); });
  }

  void head_nll(const HeadWeights& h, const float* x, const int64_t* rows, const int32_t* targets, int64_t n,
                double* nll) override {
    guarded("head", [&] {
      const int64_t chunk = device_head_rows(cfg_.vocab_size);
      const int slot = slot_of(h);
      for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t m = std::min(chunk, n - i0);
        engine_->head_nll(slot, gather(x, rows + i0, m), m, targets + i0, nll + i0);
      }
    });
  }

 private:
  // The prepared block over x (host) or, when d is not null, over its resident device copy d; the
  // observer sees the linear inputs (a host copy only when it wants one) and the entropy.
  void run_engine(const BlockWeights& w, float* x, float* d, int n_seq, int seq_len, LinearObserver* observer,
                  const SeqPacking* packing) {
    cuda::RowPacking pk;
    if (packing) pk = {packing->positions, packing->prefix_end, packing->branch_begin};
    cuda::TapFn tap;
    if (observer)
      tap = [&](cuda::Tap t, const float* in_device, int64_t rows, int cols, const cuda::HostCopy& host) {
        static const Linear qkv[] = {Linear::Q, Linear::K, Linear::V}, o[] = {Linear::O},
                            gu[] = {Linear::Gate, Linear::Up}, down[] = {Linear::Down};
        const Linear* mods = t == cuda::Tap::QKV ? qkv : t == cuda::Tap::O ? o : t == cuda::Tap::GateUp ? gu : down;
        const int n = t == cuda::Tap::QKV ? 3 : t == cuda::Tap::GateUp ? 2 : 1;
        const float* in = observer->wants_host_input(mods[0]) ? host() : nullptr;
        observer->on_linear_input(LinearInput{w.index, mods, n, in, rows, cols, in_device, ordinal_});
      };
    std::vector<double> entropy;
    if (observer && observer->wants_attention_entropy())
      entropy.assign(static_cast<size_t>(n_seq) * cfg_.num_attention_heads, 0.0);
    const cuda::RowPacking* pp = packing ? &pk : nullptr;
    const cuda::TapFn* tp = observer ? &tap : nullptr;
    double* ep = entropy.empty() ? nullptr : entropy.data();
    if (d)
      engine_->run_device(d, n_seq, seq_len, pp, tp, ep);
    else
      engine_->run(x, n_seq, seq_len, pp, tp, ep);
    if (!entropy.empty())
      observer->on_attention_entropy(w.index, entropy.data(), n_seq, cfg_.num_attention_heads, seq_len);
  }

  // The block's weights (unless held and resident) and the RoPE table for seq_len, on the device.
  void prepare(const BlockWeights& w, int seq_len) {
    if (&w != held_block_ || w.qkv.data() != held_data_ || block_stale_) {
      cuda::BlockWeightsView v;
      v.input_norm = w.input_norm.data(), v.post_norm = w.post_norm.data();
      v.q_norm = cfg_.qk_norm ? w.q_norm.data() : nullptr, v.k_norm = cfg_.qk_norm ? w.k_norm.data() : nullptr;
      v.qkv = w.qkv.data(), v.qkv_bias = opt(w.qkv_bias), v.o = w.o.data(), v.o_bias = opt(w.o_bias);
      v.gate_up = w.gate_up.data(), v.gate_up_bias = opt(w.gate_up_bias);
      v.down = w.down.data(), v.down_bias = opt(w.down_bias);
      engine_->upload_block(v);
      if (&w == held_block_) block_stale_ = false, held_data_ = w.qkv.data();
    }
    if (!rope_sent_.count(seq_len)) {
      const RopeTable& rt = rope(seq_len);
      engine_->set_rope(seq_len, rt.half, rt.cos.data(), rt.sin.data());
      rope_sent_.insert(seq_len);
    }
  }

  // Held hidden states: host range [host, host + n) lives at dev while held.
  struct Region {
    float* host;
    int64_t n;
    float* dev;
  };
  // The device address of host rows [x, x + n) when they lie in a held region, else nullptr.
  float* resident(const float* x, int64_t n) const {
    for (const Region& r : regions_)
      if (x >= r.host && x + n <= r.host + r.n) return r.dev + (x - r.host);
    return nullptr;
  }

  struct Slot {
    const HeadWeights* resident = nullptr;  // whose weights the engine's slot holds
    bool stale = true;
    long last_use = 0;
  };

  // The engine's slot for h (two: the evaluated head and KL's reference), uploading h unless it is
  // resident, held (same object and storage) and not re-held since.
  int slot_of(const HeadWeights& h) {
    ++clock_;
    int pick = -1;
    for (int i = 0; i < 2; ++i)
      if (slots_[i].resident == &h) pick = i;
    if (pick < 0) pick = slots_[0].last_use <= slots_[1].last_use ? 0 : 1;
    Slot& s = slots_[pick];
    const bool held = held_heads_.count({&h, h.lm_head.data()}) > 0;
    const float divisor = cfg_.mup_scaling ? static_cast<float>(cfg_.logit_divisor()) : 1.0f;
    if (s.resident != &h || s.stale || !held) {
      engine_->upload_head(pick, h.norm.data(), h.lm_head.data(), cfg_.vocab_size, divisor);
      s.resident = &h;
      s.stale = false;
    }
    s.last_use = clock_;
    return pick;
  }

  const float* gather(const float* x, const int64_t* rows, int64_t n) { return gather(x, rows, n, rows_); }
  const float* gather(const float* x, const int64_t* rows, int64_t n, std::vector<float>& out) {
    const int H = cfg_.hidden_size;
    out.resize(static_cast<size_t>(n) * H);
    for (int64_t i = 0; i < n; ++i) std::copy(x + rows[i] * H, x + (rows[i] + 1) * H, out.data() + i * H);
    return out.data();
  }

  int ordinal_;
  std::unique_ptr<cuda::BlockForward> engine_;
  const BlockWeights* held_block_ = nullptr;  // with its storage: a recycled block is not the held one
  const float* held_data_ = nullptr;
  bool block_stale_ = true;
  Slot slots_[2];
  std::set<std::pair<const HeadWeights*, const float*>> held_heads_;
  long clock_ = 0;
  std::set<int> rope_sent_;
  std::vector<float> rows_, rows_ref_;
  std::vector<Region> regions_;
};

}  // namespace

std::unique_ptr<LlamaForward> make_cuda_forward(const ModelConfig& cfg, int ordinal) {
  return std::make_unique<CudaForward>(cfg, ordinal);
}

cuda::BlockDims cuda_block_dims(const ModelConfig& cfg) {
  cuda::BlockDims d;
  d.hidden = cfg.hidden_size;
  d.n_heads = cfg.num_attention_heads;
  d.n_kv_heads = cfg.num_key_value_heads;
  d.head_dim = cfg.head_dim;
  d.inter = cfg.intermediate_size;
  d.sliding_window = cfg.sliding_window;
  d.eps = static_cast<float>(cfg.rms_norm_eps);
  d.residual_scaled = cfg.mup_scaling;
  d.residual_scale = static_cast<float>(cfg.residual_scale());
  d.bf16_gemm = current_device().dtype == ComputeDtype::Bf16;
  d.tf32x3_gemm = current_device().dtype == ComputeDtype::Tf32x3;
  d.flash_attention = flash_attention_requested();  // QSWEEP_CUDA_ATTENTION=flash (core/device.h)
  const bool tf32x3 = d.tf32x3_gemm;
  if (d.flash_attention && (d.bf16_gemm || tf32x3) &&
      !cuda::flash_attention_supported(d.head_dim, tf32x3 ? cuda::FlashArith::Tf32x3 : cuda::FlashArith::Bf16)) {
    static bool said = false;  // once per process, not per engine
    if (!said)
      log_warn("QSWEEP_CUDA_ATTENTION=flash: the fused %s attention does not take head dimension %d on this device "
               "(bf16: 32, 64, 128; tf32x3: 32, 64; compute capability 8.0+): attention runs on the GEMM path",
               compute_dtype_name(current_device().dtype), d.head_dim);
    said = true;
  }
  return d;
}

void cuda_guarded(const char* what, const std::function<void()>& f) {
  try {
    f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    QS_THROW("cuda " << what << ": " << e.what());
  }
}

}  // namespace qsweep

#else

namespace qsweep {
std::unique_ptr<LlamaForward> make_cuda_forward(const ModelConfig&, int) {
  QS_THROW("the CUDA forward pass is not in this build (rebuild with cmake -DQSWEEP_WITH_CUDA=ON)");
}
}  // namespace qsweep

#endif
