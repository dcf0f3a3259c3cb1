// checkpoint.cc — single-file and sharded checkpoints, fp32 conversion with finiteness checks. A
// folder with both model.safetensors and an index is refused unless the index lists exactly that
// one file: which of the two is stale cannot be told, and guessing evaluates the wrong weights.
#include "model/checkpoint.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "core/error.h"
#include "core/json_file.h"

namespace qsweep {

namespace {
bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

Checkpoint::Checkpoint(const std::string& model_dir) : dir_(model_dir) {
  const std::string single = dir_ + "/model.safetensors";
  const std::string index = dir_ + "/model.safetensors.index.json";
  if (file_exists(index)) {
    const nlohmann::json j = read_json_file(index, "the shard index");
    QS_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
             index << ": missing field 'weight_map' (expected {tensor name: shard file})");
    // Both files present: transformers reads the index, so a model.safetensors the index does not
    // list (a stale leftover, or a newer single file next to an old index) would be ignored
    // silently. Only an index that maps every tensor to model.safetensors agrees with it.
    if (file_exists(single)) {
      std::set<std::string> named;
      for (const auto& v : j["weight_map"])
        if (v.is_string()) named.insert(v.get<std::string>());
      std::string others;
      int n_others = 0;
      for (const auto& n : named) {
        if (n == "model.safetensors") continue;
        if (++n_others <= 3) others += (others.empty() ? "" : ", ") + n;
      }
      if (n_others > 3) others += " and " + std::to_string(n_others - 3) + " more";
      const bool lists_single = named.count("model.safetensors") > 0;
      QS_CHECK(others.empty() && lists_single,
               dir_ << ": holds both " << single << " and " << index
                    << ", and they disagree: the index "
                    << (others.empty() ? std::string("lists no tensors")
                                       : "names " + others +
                                             (lists_single ? " besides model.safetensors"
                                                           : ", not model.safetensors"))
                    << "; remove whichever of the two is stale");
    }
    std::map<std::string, const SafetensorsFile*> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      QS_CHECK(it.value().is_string(),
               index << ": weight_map['" << it.key() << "'] must be a file name");
      const std::string shard = it.value().get<std::string>();
      QS_CHECK(shard.find('/') == std::string::npos,
               index << ": weight_map['" << it.key() << "'] = '" << shard
                     << "' must be a file name in the model directory");
      auto s = shards.find(shard);
      if (s == shards.end()) {
        const std::string p = dir_ + "/" + shard;
        QS_CHECK(file_exists(p), index << ": names shard '" << shard << "' for tensor '"
                                       << it.key() << "', but " << p << " does not exist");
        files_.push_back(std::make_unique<SafetensorsFile>(p));
        s = shards.emplace(shard, files_.back().get()).first;
      }
      const TensorInfo* info = s->second->find(it.key());
      QS_CHECK(info, index << ": maps tensor '" << it.key() << "' to " << s->second->path()
                           << ", which does not contain it");
      tensors_[it.key()] = Entry{s->second, info};
    }
  } else {
    QS_CHECK(file_exists(single), dir_ << ": no model.safetensors or model.safetensors.index.json"
                                       << " (expected a Hugging Face model directory)");
    files_.push_back(std::make_unique<SafetensorsFile>(single));
    for (const auto& kv : files_.back()->tensors())
      tensors_[kv.first] = Entry{files_.back().get(), &kv.second};
  }
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second.info;
}

const Checkpoint::Entry& Checkpoint::entry(const std::string& name) const {
  auto it = tensors_.find(name);
  QS_CHECK(it != tensors_.end(), dir_ << ": checkpoint has no tensor '" << name << "'");
  return it->second;
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  return entry(name).file->path();
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> v;
  for (const auto& kv : tensors_) v.push_back(kv.first);
  return v;
}

void Checkpoint::read_rows_f32(const std::string& name, int64_t row0, int64_t nrows,
                               float* dst) const {
  const Entry& e = entry(name);
  const TensorInfo& t = *e.info;
  QS_CHECK(dtype_is_float_storage(t.dtype),
           e.file->path() << ": tensor '" << name << "' has dtype " << dtype_name(t.dtype)
                          << ", expected F32, F16 or BF16");
  const int64_t cols = t.shape.size() >= 2 ? (t.shape[0] ? t.numel() / t.shape[0] : 0) : 1;
  const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  QS_ASSERT(row0 >= 0 && row0 + nrows <= rows, name << ": rows out of range");
  const size_t es = dtype_size(t.dtype);
  const int64_t n = nrows * cols;
  const unsigned char* src = e.file->data(t) + static_cast<size_t>(row0 * cols) * es;
  convert_to_f32(t.dtype, src, dst, static_cast<size_t>(n));
  // Whole tensors and large row ranges are read once per pass: give their pages back (a row of
  // the embedding is left resident; repeated tokens read it again).
  if (static_cast<size_t>(n) * es >= (size_t(256) << 10)) e.file->release(src, static_cast<size_t>(n) * es);
  // The first non-finite value, found over threads (the minimum index, whatever the thread count).
  int64_t bad = n;
#pragma omp parallel for schedule(static) reduction(min : bad) if (n >= (int64_t(1) << 16))
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(dst[i]) && i < bad) bad = i;
  if (bad < n)
    QS_THROW(e.file->path() << ": tensor '" << name << "' holds a non-finite value (" << dst[bad]
                            << ") at flat index " << (row0 * cols + bad)
                            << "; the checkpoint is corrupt or was saved after a diverged run");
}

void Checkpoint::read_f32(const std::string& name, float* dst) const {
  const TensorInfo& t = *entry(name).info;
  read_rows_f32(name, 0, t.shape.empty() ? 1 : t.shape[0], dst);
}

}  // namespace qsweep
