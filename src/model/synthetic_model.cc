// synthetic_model.cc — seeded random checkpoints. Linear weights ~ N(0, 1/in) so activations keep
// unit scale through the blocks; norms ~ 1 + N(0, 0.1^2) (qwen3's q/k norms 1 + N(0, 0.25^2));
// embeddings ~ N(0, 1) (minicpm: N(0, 1/scale_emb^2)); biases ~ N(0, 0.1^2). Family tensors are only added for their family, so
// the other families' tensors (and their seeds, by index) are what they were. The folder is
// written whole or not at all: files go to a temporary sibling that is renamed into place, and
// an earlier make-model output there (listed in its .qsweep-make-model) is replaced entirely.
#include "model/synthetic_model.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "model/safetensors_writer.h"

namespace qsweep {

namespace {

namespace fs = std::filesystem;

// Lists the files written by a make-model run; a later run replaces the folder only when every
// entry in it is listed here (or is this file).
constexpr const char* kMarker = ".qsweep-make-model";

void check_spec(const SyntheticModelSpec& s) {
  QS_CHECK(s.hidden > 0 && s.layers > 0 && s.heads > 0 && s.kv_heads > 0 && s.vocab > 0,
           "make-model: sizes must be positive");
  QS_CHECK(s.heads % s.kv_heads == 0, "make-model: --heads must be a multiple of --kv-heads");
  const int hd = s.head_dim > 0 ? s.head_dim : s.hidden / s.heads;
  QS_CHECK(hd % 2 == 0, "make-model: head_dim must be even");
  QS_CHECK(s.shards >= 1, "make-model: --shards must be >= 1");
  QS_CHECK(s.model_type == "llama" || s.model_type == "mistral" || s.model_type == "qwen2" ||
               s.model_type == "qwen3" || s.model_type == "minicpm",
           "make-model: --model-type '" << s.model_type
                                        << "' is not known (expected llama, mistral, qwen2, qwen3 or minicpm)");
  const bool minicpm = s.model_type == "minicpm";
  QS_CHECK(!minicpm || (s.scale_emb > 0 && s.scale_depth > 0 && s.dim_model_base >= 0),
           "make-model: --scale-emb and --scale-depth must be positive, --dim-model-base >= 0");
  if (!s.tokenizer.empty()) {
    struct stat st;
    QS_CHECK(::stat(s.tokenizer.c_str(), &st) == 0 && S_ISREG(st.st_mode),
             s.tokenizer << ": no such file (--tokenizer: the tokenizer.model to copy)");
    std::ifstream in(s.tokenizer, std::ios::binary);
    QS_CHECK(in, s.tokenizer << ": cannot open tokenizer to copy");
  }
}

// Writes the model's files into the existing, empty folder `dir`; appends their names to `written`.
void write_files(const std::string& dir, const SyntheticModelSpec& s, std::vector<std::string>* written) {
  const int hd = s.head_dim > 0 ? s.head_dim : s.hidden / s.heads;
  const bool minicpm = s.model_type == "minicpm";

  nlohmann::ordered_json cfg;
  cfg["architectures"] = {s.model_type == "qwen2"     ? "Qwen2ForCausalLM"
                          : s.model_type == "qwen3"   ? "Qwen3ForCausalLM"
                          : s.model_type == "minicpm" ? "MiniCPMForCausalLM"
                          : s.model_type == "mistral" ? "MistralForCausalLM"
                                                      : "LlamaForCausalLM"};
  cfg["model_type"] = s.model_type;
  cfg["hidden_size"] = s.hidden;
  cfg["intermediate_size"] = s.intermediate;
  cfg["num_attention_heads"] = s.heads;
  cfg["num_key_value_heads"] = s.kv_heads;
  cfg["num_hidden_layers"] = s.layers;
  cfg["head_dim"] = hd;
  cfg["rms_norm_eps"] = 1e-5;
  cfg["rope_theta"] = s.rope_theta;
  cfg["vocab_size"] = s.vocab;
  cfg["max_position_embeddings"] = s.max_positions;
  cfg["tie_word_embeddings"] = s.tie_embeddings;
  cfg["hidden_act"] = "silu";
  cfg["bos_token_id"] = 1;
  cfg["eos_token_id"] = 2;
  if (minicpm) {
    cfg["scale_emb"] = s.scale_emb;
    cfg["scale_depth"] = s.scale_depth;
    cfg["dim_model_base"] = s.dim_model_base > 0 ? s.dim_model_base : std::max(1, s.hidden / 8);
  }
  if (s.model_type == "qwen3") cfg["attention_bias"] = false;
  if (s.llama3_rope)
    cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  cfg["torch_dtype"] = s.dtype == DType::BF16 ? "bfloat16" : s.dtype == DType::F16 ? "float16" : "float32";
  {
    std::ofstream out(dir + "/config.json");
    QS_CHECK(out, dir << "/config.json: cannot create");
    out << cfg.dump(2) << "\n";
    QS_CHECK(out.flush(), dir << "/config.json: cannot write");
    written->push_back("config.json");
  }

  struct Gen {
    std::string name;
    std::vector<int64_t> shape;
    float mean, stddev;
  };
  std::vector<Gen> gens;
  const int64_t H = s.hidden, Q = int64_t(s.heads) * hd, KV = int64_t(s.kv_heads) * hd,
                I = s.intermediate;
  // minicpm: N(0, 1/scale_emb^2), so the decoder's input (embedding × scale_emb) is unit-scale too.
  gens.push_back({"model.embed_tokens.weight", {s.vocab, H}, 0.0f, minicpm ? float(1 / s.scale_emb) : 1.0f});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    gens.push_back({p + "input_layernorm.weight", {H}, 1.0f, 0.1f});
    gens.push_back({p + "self_attn.q_proj.weight", {Q, H}, 0.0f, float(1 / std::sqrt(H))});
    gens.push_back({p + "self_attn.k_proj.weight", {KV, H}, 0.0f, float(1 / std::sqrt(H))});
    gens.push_back({p + "self_attn.v_proj.weight", {KV, H}, 0.0f, float(1 / std::sqrt(H))});
    if (s.model_type == "qwen2") {
      gens.push_back({p + "self_attn.q_proj.bias", {Q}, 0.0f, 0.1f});
      gens.push_back({p + "self_attn.k_proj.bias", {KV}, 0.0f, 0.1f});
      gens.push_back({p + "self_attn.v_proj.bias", {KV}, 0.0f, 0.1f});
    }
    gens.push_back({p + "self_attn.o_proj.weight", {H, Q}, 0.0f, float(1 / std::sqrt(Q))});
    if (s.model_type == "qwen3") {
      gens.push_back({p + "self_attn.q_norm.weight", {hd}, 1.0f, 0.25f});
      gens.push_back({p + "self_attn.k_norm.weight", {hd}, 1.0f, 0.25f});
    }
    gens.push_back({p + "post_attention_layernorm.weight", {H}, 1.0f, 0.1f});
    gens.push_back({p + "mlp.gate_proj.weight", {I, H}, 0.0f, float(1 / std::sqrt(H))});
    gens.push_back({p + "mlp.up_proj.weight", {I, H}, 0.0f, float(1 / std::sqrt(H))});
    gens.push_back({p + "mlp.down_proj.weight", {H, I}, 0.0f, float(1 / std::sqrt(I))});
  }
  gens.push_back({"model.norm.weight", {H}, 1.0f, 0.1f});
  if (!s.tie_embeddings) gens.push_back({"lm_head.weight", {s.vocab, H}, 0.0f, float(1 / std::sqrt(H))});

  // Shards: consecutive tensors, balanced by count.
  const int n_shards = std::min<int>(s.shards, static_cast<int>(gens.size()));
  nlohmann::ordered_json weight_map;
  for (int sh = 0; sh < n_shards; ++sh) {
    const size_t g0 = gens.size() * sh / n_shards, g1 = gens.size() * (sh + 1) / n_shards;
    char fname[64];
    if (n_shards == 1)
      std::snprintf(fname, sizeof(fname), "model.safetensors");
    else
      std::snprintf(fname, sizeof(fname), "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
    std::vector<TensorToWrite> specs;
    for (size_t g = g0; g < g1; ++g) {
      specs.push_back({gens[g].name, s.dtype, gens[g].shape, {}});
      weight_map[gens[g].name] = fname;
    }
    write_safetensors(dir + "/" + fname, specs, [&](size_t i, std::vector<unsigned char>& bytes) {
      const Gen& gen = gens[g0 + i];
      // One generator per tensor, seeded from (seed, tensor index): shards do not change values.
      std::mt19937_64 rng(s.seed * 1000003ull + (g0 + i));
      std::normal_distribution<float> nd(gen.mean, gen.stddev);
      int64_t n = 1;
      for (int64_t d : gen.shape) n *= d;
      std::vector<float> v(static_cast<size_t>(n));
      for (auto& x : v) x = nd(rng);
      bytes = encode_f32(v, s.dtype);
    });
    written->push_back(fname);
  }
  if (n_shards > 1) {
    nlohmann::ordered_json idx;
    idx["metadata"] = {{"total_size", 0}};
    idx["weight_map"] = weight_map;
    std::ofstream out(dir + "/model.safetensors.index.json");
    out << idx.dump(2) << "\n";
    QS_CHECK(out.flush(), dir << "/model.safetensors.index.json: cannot write");
    written->push_back("model.safetensors.index.json");
  }
  if (!s.tokenizer.empty()) {
    std::ifstream in(s.tokenizer, std::ios::binary);
    QS_CHECK(in, s.tokenizer << ": cannot open tokenizer to copy");
    std::ofstream out(dir + "/tokenizer.model", std::ios::binary);
    QS_CHECK(out, dir << "/tokenizer.model: cannot create");
    if (in.peek() != std::ifstream::traits_type::eof()) out << in.rdbuf();
    QS_CHECK(out.flush() && !in.bad(), dir << "/tokenizer.model: copying " << s.tokenizer << " failed");
    written->push_back("tokenizer.model");
  }
}

// The entries of an existing folder that an earlier make-model did not write (all of them when it
// has no marker).
std::vector<std::string> foreign_entries(const fs::path& dir) {
  std::set<std::string> ours;
  std::ifstream marker(dir / kMarker);
  const bool has_marker = static_cast<bool>(marker);
  for (std::string line; std::getline(marker, line);)
    if (!line.empty() && line[0] != '#') ours.insert(line);
  std::vector<std::string> foreign;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (!(has_marker && (n == kMarker || ours.count(n)))) foreign.push_back(n);
  }
  std::sort(foreign.begin(), foreign.end());
  return foreign;
}

std::string make_temp_dir(const fs::path& parent, const std::string& stem) {
  std::string tmpl = (parent / ("." + stem + "-XXXXXX")).string();
  QS_CHECK(::mkdtemp(&tmpl[0]), parent.string() << ": cannot create a temporary folder: "
                                                 << std::strerror(errno));
  return tmpl;
}

}  // namespace

void write_synthetic_model(const std::string& dir, const SyntheticModelSpec& s) {
  check_spec(s);
  // The folder as the file system names it ("out/" -> out, a symlink -> its target), so the
  // temporary folder is a sibling and the final rename stays on one file system.
  fs::path target = fs::absolute(dir).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  std::error_code ec;
  const bool existed = fs::exists(target, ec);
  if (existed) target = fs::canonical(target);
  const fs::path parent = target.parent_path();
  QS_CHECK(fs::is_directory(parent, ec), dir << ": the parent folder " << parent.string()
                                             << " does not exist");
  bool was_empty = true;
  if (existed) {
    QS_CHECK(fs::is_directory(target, ec), dir << ": exists and is not a folder");
    const std::vector<std::string> foreign = foreign_entries(target);
    std::string names;
    for (size_t i = 0; i < foreign.size() && i < 5; ++i) names += (i ? ", " : "") + foreign[i];
    if (foreign.size() > 5) names += " and " + std::to_string(foreign.size() - 5) + " more";
    QS_CHECK(foreign.empty(),
             dir << ": holds files that qsweep make-model did not write (" << names
                 << "); make-model replaces only an empty folder or its own earlier output "
                    "(listed in " << kMarker << "): remove them or choose another --output");
    was_empty = fs::is_empty(target, ec);
  }

  // Everything is written into a sibling temporary folder and renamed into place: a failure
  // leaves neither a half-written model nor a mix of old and new files (an old index next to a
  // new model.safetensors would make the loader read the old shards).
  const std::string stem = target.filename().string();
  const std::string tmp = make_temp_dir(parent, stem + ".make-model");
  try {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::chmod(tmp.c_str(), 0777 & ~mask);
    std::vector<std::string> written;
    write_files(tmp, s, &written);
    {
      std::ofstream out(tmp + "/" + kMarker);
      out << "# written by qsweep make-model; a later make-model into this folder replaces these files\n";
      for (const auto& n : written) out << n << "\n";
      QS_CHECK(out.flush(), tmp << "/" << kMarker << ": cannot write");
    }
    if (!existed || was_empty) {
      // rename(2) replaces an empty folder in one step.
      QS_CHECK(::rename(tmp.c_str(), target.c_str()) == 0,
               dir << ": cannot move the new model into place: " << std::strerror(errno));
    } else {
      const std::string old = make_temp_dir(parent, stem + ".replaced");
      if (::rename(target.c_str(), old.c_str()) != 0) {
        const int e = errno;
        ::rmdir(old.c_str());
        QS_THROW(dir << ": cannot move the earlier make-model output aside: " << std::strerror(e));
      }
      if (::rename(tmp.c_str(), target.c_str()) != 0) {
        const int e = errno;
        ::rename(old.c_str(), target.c_str());
        QS_THROW(dir << ": cannot move the new model into place: " << std::strerror(e));
      }
      fs::remove_all(old, ec);
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace qsweep
