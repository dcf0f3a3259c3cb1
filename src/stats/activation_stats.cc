// activation_stats.cc — per-chunk sums, their tree reduction, and the exact Gram.
#include "stats/activation_stats.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "stats/block_buffers.h"
#include "stats/exact_gram.h"

#ifdef QSWEEP_WITH_CUDA
#include "qsweep/cuda/input_stats.h"
#endif

namespace qsweep {

const char* block_input_name(BlockInput i) {
  static const char* names[] = {"qkv", "o_proj", "gate_up", "down_proj"};
  return names[static_cast<int>(i)];
}

BlockInput input_of(Linear l) {
  switch (l) {
    case Linear::Q: case Linear::K: case Linear::V: return BlockInput::Qkv;
    case Linear::O: return BlockInput::O;
    case Linear::Gate: case Linear::Up: return BlockInput::GateUp;
    case Linear::Down: return BlockInput::Down;
  }
  return BlockInput::Qkv;
}

double InputStats::mean() const { return s1 / elements(); }
double InputStats::std() const {
  const double n = elements(), m = s1 / n;
  return std::sqrt(std::max(0.0, s2 / n - m * m));
}
double InputStats::excess_kurtosis() const {
  const double n = elements(), m = s1 / n;
  const double m2 = s2 / n - m * m;
  const double m4 = s4 / n - 4 * m * s3 / n + 6 * m * m * s2 / n - 3 * m * m * m * m;
  return m2 > 0 ? m4 / (m2 * m2) - 3.0 : 0.0;
}

void gram_xtx(const float* x, int64_t rows, int cols, double* out) {
  std::vector<double> xd(x, x + rows * cols);
  constexpr int kTile = 64;
  const int tiles = (cols + kTile - 1) / kTile;
#pragma omp parallel for schedule(dynamic, 1)
  for (int t = 0; t < tiles; ++t) {
    const int j0 = t * kTile, jn = std::min(kTile, cols - j0);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, jn, static_cast<int>(rows), 1.0,
                xd.data(), cols, xd.data() + j0, cols, 0.0, out + j0, cols);
  }
}

BlockCalibStats::BlockCalibStats(const ModelConfig& cfg, int seq_len, double threshold, bool with_gram,
                                 ChunkRange chunks, const PraqSpec* praq, BlockBuffers* buffers)
    : seq_len_(seq_len), threshold_(threshold), with_gram_(with_gram), heads_(cfg.num_attention_heads),
      buffers_(buffers) {
  channels_ = {cfg.hidden_size, cfg.q_dim(), cfg.hidden_size, cfg.intermediate_size};
  size_t off = 0;
  for (int i = 0; i < kNumBlockInputs; ++i) {
    offset_[i] = off;
    off += 3 * static_cast<size_t>(channels_[i]) + 6;  // sum_sq, sum_abs, s1..s4, below, tokens, sum
    max_abs_[i].assign(static_cast<size_t>(channels_[i]), 0.0);
    if (with_gram_) grams_.emplace_back(channels_[i], buffers);
  }
  offset_[kNumBlockInputs] = off;
  praq_off_ = off + static_cast<size_t>(heads_) + 1;
  size_t total = praq_off_;
  if (praq) {
    QS_ASSERT(praq->hidden == channels_[static_cast<int>(BlockInput::GateUp)], "PRAQ width");
    praq_ = std::make_unique<PraqAccumulator>(*praq);
    total += static_cast<size_t>(praq->hidden);
  }
  chunk_index_ = chunks.first - 1;
  tree_ = std::make_unique<TreeSum>(chunks.n, chunks.first, chunks.last, total);
}

BlockCalibStats::~BlockCalibStats() {
  if (buffers_)
    for (InputStats& t : totals_) buffers_->give(std::move(t.gram));
}

void BlockCalibStats::close_chunk() {
  if (cur_.empty()) return;
  tree_->add(std::move(cur_));
  cur_.clear();
}

void BlockCalibStats::begin_chunk() {
  close_chunk();
  cur_.assign(praq_off_ + (praq_ ? static_cast<size_t>(channels_[static_cast<int>(BlockInput::GateUp)]) : 0), 0.0);
  ++chunk_index_;
}

// The CPU's sums of one input (x on the host) into the open chunk's st and the running max mx.
void BlockCalibStats::add_host_sums(const LinearInput& in, double* st, std::vector<double>& mx) const {
  const int C = in.cols;
  const int64_t seq = seq_len_;
  // Each sequence is judged against its own RMS; rows are then accumulated in fixed tiles of
  // kTileRows rows (partials combined in tile order), so the sums do not depend on the thread count.
  const int64_t tiles_per_seq = (seq + kTileRows - 1) / kTileRows;
  const int64_t n_seq = (in.rows + seq - 1) / seq;
  const int64_t tiles = n_seq * tiles_per_seq;
  const size_t W = 4 * static_cast<size_t>(C) + 5;  // sum_sq, sum_abs, max_abs, s1..s4, below, sum
  std::vector<double> part(static_cast<size_t>(tiles) * W, 0.0), cut(static_cast<size_t>(n_seq));
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < n_seq; ++q) {
    const int64_t r0 = q * seq, r1 = std::min(in.rows, r0 + seq);
    double ss = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = in.x + r * C;
      double rs = 0;
#pragma omp simd reduction(+ : rs)
      for (int c = 0; c < C; ++c) rs += static_cast<double>(xr[c]) * xr[c];
      ss += rs;
    }
    cut[q] = threshold_ * std::sqrt(ss / (static_cast<double>(r1 - r0) * C));
  }
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t q = t / tiles_per_seq;
    const int64_t r0 = q * seq + (t % tiles_per_seq) * kTileRows;
    const int64_t r1 = std::min({in.rows, r0 + kTileRows, (q + 1) * seq});
    double* pt = part.data() + static_cast<size_t>(t) * W;
    double* psq = pt;
    double* pab = pt + C;
    double* pmx = pt + 2 * C;
    double* psum = pt + 3 * C + 5;
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0, below = 0;
    const double ct = cut[q];
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = in.x + r * C;
#pragma omp simd reduction(+ : m1, m2, m3, m4, below)
      for (int c = 0; c < C; ++c) {
        const double v = xr[c], a = std::fabs(v), v2 = v * v;
        psq[c] += v2;
        pab[c] += a;
        psum[c] += v;
        pmx[c] = a > pmx[c] ? a : pmx[c];
        m1 += v;
        m2 += v2;
        m3 += v2 * v;
        m4 += v2 * v2;
        below += a < ct ? 1.0 : 0.0;
      }
    }
    pt[3 * C] = m1; pt[3 * C + 1] = m2; pt[3 * C + 2] = m3; pt[3 * C + 3] = m4; pt[3 * C + 4] = below;
  }
  for (int64_t t = 0; t < tiles; ++t) {
    const double* pt = part.data() + static_cast<size_t>(t) * W;
    for (int c = 0; c < C; ++c) {
      st[c] += pt[c];
      st[C + c] += pt[C + c];
      st[2 * C + 6 + c] += pt[3 * C + 5 + c];
      mx[c] = std::max(mx[c], pt[2 * C + c]);
    }
    for (int k = 0; k < 5; ++k) st[2 * C + k] += pt[3 * C + k];
  }
}

// The same sums computed on the GPU where the input is (kernels/input_stats.cu): per channel the
// CPU's bits, the whole-matrix sums added over the channels here in channel order.
void BlockCalibStats::add_device_sums(const LinearInput& in, double* st, std::vector<double>& mx) const {
#ifdef QSWEEP_WITH_CUDA
  const int C = in.cols;
  std::vector<double> d(static_cast<size_t>(cuda::kNumInputStatFields) * C);
  cuda::input_stats(in.x_device, in.rows, C, seq_len_, kTileRows, threshold_, in.device, d.data());
  auto field = [&](int f) { return d.data() + static_cast<size_t>(f) * C; };
  const double *sq = field(cuda::kSumSq), *ab = field(cuda::kSumAbs), *sm = field(cuda::kSum), *mxd = field(cuda::kMaxAbs);
  for (int c = 0; c < C; ++c) {
    st[c] += sq[c];
    st[C + c] += ab[c];
    st[2 * C + 6 + c] += sm[c];
    mx[c] = std::max(mx[c], mxd[c]);
  }
  for (int k = 0; k < 5; ++k) {
    const double* f = field(cuda::kM1 + k);
    double total = 0;
    for (int c = 0; c < C; ++c) total += f[c];
    st[2 * C + k] += total;
  }
#else
  (void)in, (void)st, (void)mx;
  QS_ASSERT(false, "device activations in a build without CUDA");
#endif
}

void BlockCalibStats::on_linear_input(const LinearInput& in) {
  QS_ASSERT(!cur_.empty(), "begin_chunk() before the forward pass");
  const int i = static_cast<int>(input_of(in.modules[0]));
  const int C = in.cols;
  QS_ASSERT(C == channels_[i], "input width");
  double* st = cur_.data() + offset_[i];
  std::vector<double>& mx = max_abs_[i];
  if (in.x_device)
    add_device_sums(in, st, mx);
  else
    add_host_sums(in, st, mx);
  st[2 * C + 5] += static_cast<double>(in.rows);
  if (with_gram_) {  // on a GPU forward, Σxxᵀ accumulates on the device (the same integers)
    if (in.x_device)
      grams_[i].add_device(in.x_device, in.rows, in.device);
    else
      grams_[i].add(in.x, in.rows);
  }
  if (praq_ && i == static_cast<int>(BlockInput::GateUp)) {  // on a GPU forward, where the input is
    if (in.x_device)
      praq_->add_device(in.x_device, in.rows, chunk_index_, in.device, cur_.data() + praq_off_);
    else
      praq_->add(in.x, in.rows, chunk_index_, cur_.data() + praq_off_);
  }
}

void BlockCalibStats::on_attention_entropy(int, const double* sums, int n_seq, int n_heads, int seq_len) {
  QS_ASSERT(!cur_.empty(), "begin_chunk() before the forward pass");
  double* e = cur_.data() + offset_[kNumBlockInputs];
  for (int s = 0; s < n_seq; ++s)
    for (int h = 0; h < n_heads; ++h) e[h] += sums[s * n_heads + h];
  e[n_heads] += static_cast<double>(n_seq) * seq_len;
}

void BlockCalibStats::reduce(const Comm& comm) {
  close_chunk();
  const std::vector<double> all = tree_->finish(comm);
  tree_.reset();
  for (int i = 0; i < kNumBlockInputs; ++i) {
    const int C = channels_[i];
    const double* st = all.data() + offset_[i];
    InputStats& t = totals_[i];
    t.channels = C;
    t.sum_sq.assign(st, st + C);
    t.sum_abs.assign(st + C, st + 2 * C);
    t.sum.assign(st + 2 * C + 6, st + 3 * C + 6);
    t.s1 = st[2 * C]; t.s2 = st[2 * C + 1]; t.s3 = st[2 * C + 2]; t.s4 = st[2 * C + 3];
    t.n_below = st[2 * C + 4];
    t.tokens = st[2 * C + 5];
    t.max_abs = std::move(max_abs_[i]);
    comm.allreduce_max(t.max_abs);
  }
  for (int i = 0; i < static_cast<int>(grams_.size()); ++i) {
    ExactGram& g = grams_[static_cast<size_t>(i)];
    const int status = g.agree_status(comm);  // collective: every rank throws alike
    QS_CHECK(status != 2, "Σxxᵀ of input " << block_input_name(static_cast<BlockInput>(i))
                                           << ": an entry of one chunk's xᵀx is at least 2^62 (4.6e18); "
                                              "activations this large cannot be accumulated exactly");
    g.allreduce(comm);
    totals_[i].gram = g.to_double(status);
    g = ExactGram(0);  // free the accumulator before the next input's conversion
  }
  grams_.clear();
  const double* e = all.data() + offset_[kNumBlockInputs];
  entropy_sum.assign(e, e + heads_);
  entropy_queries = e[heads_];
  if (praq_) {
    const int C = channels_[static_cast<int>(BlockInput::GateUp)];
    const double tokens = totals_[static_cast<int>(BlockInput::GateUp)].tokens;
    praq_importance.resize(static_cast<size_t>(C));
    for (int j = 0; j < C; ++j) praq_importance[static_cast<size_t>(j)] = std::sqrt(all[praq_off_ + static_cast<size_t>(j)] / tokens);
    praq_.reset();
  }
}

}  // namespace qsweep
