// bench_gptq.cc — the qsweep side of the GPTQ-vs-PyTorch benchmark (bench/gptq_vs_torch.sh).
//
// Builds GPTQ problems (W, Σ x xᵀ, tokens), dumps them as .npy files for bench/gptq_torch.py,
// times qsweep's gptq_quantize on each (best of --reps) and dumps its result:
//   real      the 7 linears of block 0 of --model, with Gram matrices gathered by running
//             --n-calib windows of --seq-len tokens of --text through the block (the same
//             BlockCalibStats observer the quantize command uses);
//   synthetic Llama-3.2-1B shapes [out, in] = 2048x2048 (q/o_proj) and 8192x2048 (gate/up_proj),
//             W ~ N(0, 1/in), Σ x xᵀ of --syn-tokens tokens x ~ N(0, 1) with a few 20x outlier
//             channels (one Gram matrix shared by both, since both have in = 2048).
// Output dir: <name>.w.npy (f4 [out,in]), xtx_<in>_<src>.npy (f8 [in,in]), <name>.wq.npy (f4 ŵ),
// <name>.codes.npy (u1 codes), manifest.json (shapes, tokens, files, qsweep seconds per run).
//
//   build/bench/qsweep_bench_gptq --out /tmp/gptq_bench --threads 2
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"
#include "dist/comm.h"
#include "eval/calib_windows.h"
#include "model/forward.h"
#include "model/llama_weights.h"
#include "model/tokenizer.h"
#include "quant/gptq.h"
#include "stats/activation_stats.h"

namespace {

using namespace qsweep;
using json = nlohmann::json;

// NumPy .npy format 1.0: magic, version, little-endian u16 header length, a Python dict literal
// padded with spaces and a final '\n' so the data starts at a multiple of 64 bytes.
void write_npy(const std::string& path, const char* descr, const std::vector<int64_t>& shape,
               const void* data, size_t bytes) {
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  dict += shape.size() == 1 ? ",), }" : "), }";  // Python tuple syntax: (n,) or (a, b)
  const size_t prefix = 10;  // magic(6) + version(2) + length(2)
  size_t total = prefix + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  QS_CHECK(dict.size() < 65536, path << ": npy header too long");
  std::ofstream f(path, std::ios::binary);
  QS_CHECK(f.good(), path << ": cannot open for writing");
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  f.write(magic, 8);
  const uint16_t hl = static_cast<uint16_t>(dict.size());
  const char len[2] = {static_cast<char>(hl & 0xff), static_cast<char>(hl >> 8)};
  f.write(len, 2);
  f.write(dict.data(), static_cast<std::streamsize>(dict.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  QS_CHECK(f.good(), path << ": write failed");
}

struct Problem {
  std::string name, source;  // source: "real" | "synthetic"
  int out = 0, in = 0;
  double tokens = 0;
  std::vector<float> w;
  std::string xtx_file;  // relative to the output dir
  const std::vector<double>* xtx = nullptr;
};

struct Args {
  std::string model = "demo/kjv-llama", text = "demo/data/kjv-test.txt", out = "results/gptq_bench";
  std::string which = "all";  // all | real | synthetic
  std::string device = "cpu";  // cpu | cuda: where gptq_quantize runs (the GPU half: quant/gptq_cuda.h)
  int threads = 2, reps = 3, n_calib = 32, seq_len = 256, chunk = 4, syn_tokens = 4096, bits = 4, group = 128;
  uint64_t seed = 0;
};

void usage() {
  std::cout << "usage: qsweep_bench_gptq [--model DIR] [--text FILE] [--out DIR] [--threads N] [--reps N]\n"
               "         [--n-calib N] [--seq-len N] [--syn-tokens N] [--bits B] [--group G] [--seed S]\n"
               "         [--only all|real|synthetic] [--device cpu|cuda]\n";
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      QS_CHECK(i + 1 < argc, k << " needs a value");
      return argv[++i];
    };
    if (k == "--model") a.model = val();
    else if (k == "--text") a.text = val();
    else if (k == "--out") a.out = val();
    else if (k == "--only") a.which = val();
    else if (k == "--device") a.device = val();
    else if (k == "--threads") a.threads = std::stoi(val());
    else if (k == "--reps") a.reps = std::stoi(val());
    else if (k == "--n-calib") a.n_calib = std::stoi(val());
    else if (k == "--seq-len") a.seq_len = std::stoi(val());
    else if (k == "--syn-tokens") a.syn_tokens = std::stoi(val());
    else if (k == "--bits") a.bits = std::stoi(val());
    else if (k == "--group") a.group = std::stoi(val());
    else if (k == "--seed") a.seed = std::stoull(val());
    else if (k == "-h" || k == "--help") { usage(); std::exit(0); }
    else { usage(); QS_CHECK(false, "unknown argument " << k); }
  }
  QS_CHECK(a.which == "all" || a.which == "real" || a.which == "synthetic", "--only all|real|synthetic");
  QS_CHECK(a.reps >= 1, "--reps must be at least 1");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    set_num_threads(a.threads);
    select_device(parse_device_choice(a.device), Comm::local());  // the calibration passes and GPTQ run there
    QS_CHECK(std::system(("mkdir -p '" + a.out + "'").c_str()) == 0, a.out << ": cannot create");
    std::vector<Problem> problems;
    // Gram matrices live here (the problems point into it); a list keeps the pointers stable.
    std::vector<std::unique_ptr<std::vector<double>>> grams;

    json man;
    man["threads"] = a.threads;
    man["device"] = a.device;
    man["reps"] = a.reps;
    man["grid"] = {{"bits", a.bits}, {"group_size", a.group}, {"sym", false}};
    man["gptq"] = {{"damp", 0.01}, {"block_size", 128}, {"act_order", false}};

    if (a.which != "synthetic") {
      Timer t;
      LlamaWeights model(a.model);
      const ModelConfig& cfg = model.config();
      const auto doc = load_document_tokens(a.text, a.model, cfg.vocab_size, {});
      const CalibWindows calib = sample_calib_windows(doc, model_special_tokens(a.model, cfg.bos_token_id).prefix, a.n_calib, a.seq_len, a.seed, a.text);
      const int H = cfg.hidden_size, T = a.seq_len;
      std::vector<float> x(static_cast<size_t>(calib.n) * T * H);
      model.embed(calib.tokens.data(), static_cast<int64_t>(calib.n) * T, x.data());
      std::unique_ptr<BlockWeights> bw = model.load_block(0);
      std::unique_ptr<LlamaForward> fwd = make_forward(cfg);  // --device's
      fwd->hold(*bw);
      const int64_t n_chunks = (calib.n + a.chunk - 1) / a.chunk;
      BlockCalibStats stats(cfg, T, 0.01, true, ChunkRange{n_chunks, 0, n_chunks});
      for (int s = 0; s < calib.n; s += a.chunk) {
        const int n = std::min(a.chunk, calib.n - s);
        stats.begin_chunk();
        fwd->run_block(*bw, x.data() + static_cast<size_t>(s) * T * H, n, T, &stats);
      }
      stats.reduce(Comm::local());
      for (int i = 0; i < kNumBlockInputs; ++i) {
        const InputStats& st = stats.input(static_cast<BlockInput>(i));
        const std::string f = std::string("xtx_block0_") + block_input_name(static_cast<BlockInput>(i)) + ".npy";
        write_npy(a.out + "/" + f, "<f8", {st.channels, st.channels}, st.gram.data(), st.gram.size() * sizeof(double));
      }
      const Linear all[kNumLinear] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};
      for (Linear l : all) {
        const InputStats& st = stats.input(input_of(l));
        Problem p;
        p.name = std::string("block0.") + linear_short_name(l);
        p.source = "real";
        p.out = bw->out_features(l);
        p.in = bw->in_features(l);
        QS_CHECK(st.channels == p.in, p.name << ": Gram matrix has " << st.channels << " channels, layer " << p.in);
        p.tokens = st.tokens;
        const float* w = bw->linear(l);
        p.w.assign(w, w + static_cast<size_t>(p.out) * p.in);
        p.xtx_file = std::string("xtx_block0_") + block_input_name(input_of(l)) + ".npy";
        grams.push_back(std::make_unique<std::vector<double>>(st.gram));
        p.xtx = grams.back().get();
        problems.push_back(std::move(p));
      }
      man["real"] = {{"model", a.model}, {"text", a.text}, {"n_calib", a.n_calib}, {"seq_len", a.seq_len},
                     {"seed", a.seed}, {"calib_seconds", t.seconds()}};
      std::fprintf(stderr, "real: block 0 of %s, %d windows x %d tokens, Gram matrices in %.2f s\n",
                   a.model.c_str(), a.n_calib, a.seq_len, t.seconds());
    }

    if (a.which != "real") {
      Timer t;
      const int in = 2048, n = a.syn_tokens;
      std::mt19937_64 rng(a.seed + 12345);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      std::vector<float> X(static_cast<size_t>(n) * in);
      for (auto& v : X) v = nd(rng);
      std::vector<int> outliers;
      for (int k = 0; k < 8; ++k) outliers.push_back(static_cast<int>(rng() % in));
      for (int r = 0; r < n; ++r)
        for (int c : outliers) X[static_cast<size_t>(r) * in + c] *= 20.0f;
      auto g = std::make_unique<std::vector<double>>(static_cast<size_t>(in) * in);
      gram_xtx(X.data(), n, in, g->data());
      const std::string f = "xtx_2048_synthetic.npy";
      write_npy(a.out + "/" + f, "<f8", {in, in}, g->data(), g->size() * sizeof(double));
      std::sort(outliers.begin(), outliers.end());
      man["synthetic"] = {{"tokens", n}, {"outlier_channels", outliers}, {"outlier_scale", 20}};
      for (int out : {2048, 8192}) {
        Problem p;
        p.name = "syn." + std::to_string(out) + "x" + std::to_string(in);
        p.source = "synthetic";
        p.out = out;
        p.in = in;
        p.tokens = n;
        p.w.resize(static_cast<size_t>(out) * in);
        std::normal_distribution<float> wd(0.0f, 1.0f / std::sqrt(static_cast<float>(in)));
        for (auto& v : p.w) v = wd(rng);
        p.xtx_file = f;
        p.xtx = g.get();
        problems.push_back(std::move(p));
      }
      grams.push_back(std::move(g));
      std::fprintf(stderr, "synthetic: %d tokens, Gram 2048x2048 in %.2f s\n", n, t.seconds());
    }

    GridSpec grid;
    grid.bits = a.bits;
    grid.group_size = a.group;
    grid.sym = false;
    GptqOptions opt;  // damp 0.01, blocks of 128, no act-order
    json layers = json::array();
    for (const Problem& p : problems) {
      std::vector<double> runs;
      GptqResult res;
      for (int r = 0; r < a.reps; ++r) {
        Timer t;
        res = gptq_quantize(p.w.data(), p.out, p.in, *p.xtx, p.tokens, grid, opt);
        runs.push_back(t.seconds());
      }
      const double best = *std::min_element(runs.begin(), runs.end());
      write_npy(a.out + "/" + p.name + ".w.npy", "<f4", {p.out, p.in}, p.w.data(), p.w.size() * sizeof(float));
      const std::vector<float> wq = res.q.dequantize();
      write_npy(a.out + "/" + p.name + ".wq.npy", "<f4", {p.out, p.in}, wq.data(), wq.size() * sizeof(float));
      write_npy(a.out + "/" + p.name + ".codes.npy", "|u1", {p.out, p.in}, res.q.codes.data(), res.q.codes.size());
      layers.push_back({{"name", p.name}, {"source", p.source}, {"out", p.out}, {"in", p.in}, {"tokens", p.tokens},
                        {"w", p.name + ".w.npy"}, {"xtx", p.xtx_file}, {"wq", p.name + ".wq.npy"},
                        {"codes", p.name + ".codes.npy"}, {"qsweep_seconds", best}, {"qsweep_runs", runs},
                        {"damp_used", res.damp_used}, {"dead_columns", res.dead_columns}});
      std::fprintf(stderr, "qsweep gptq %-18s [%5d x %5d]  best %.4f s of %d\n", p.name.c_str(), p.out, p.in, best, a.reps);
    }
    man["layers"] = layers;
    std::ofstream mf(a.out + "/manifest.json");
    mf << man.dump(2) << "\n";
    QS_CHECK(mf.good(), a.out << "/manifest.json: write failed");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep_bench_gptq: %s\n", e.what());
    return 1;
  }
}
