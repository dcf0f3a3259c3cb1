// test_loader_validation.cc — every way a checkpoint directory can be bad is reported as a
// qsweep::Error whose message names the file and the offending tensor or config field, before
// (or, for non-finite values, while) any work is done; and a good synthetic checkpoint loads,
// with sharded and single-file copies of the same seed giving bit-identical weights.
//
// Why: a 64-rank job that dies in block 30 on a corrupt shard, or silently computes with a
// mis-shaped tensor, wastes a whole allocation; the loader's promise (safetensors.h,
// llama_weights.h, config.h) is a clear error up front. Each bad input below is built so that
// exactly one check catches it: with that check removed the test fails (no throw, or a message
// without the named tensor/field).
//
// Bad files are made by writing a valid model with write_synthetic_model into a scratch
// directory and then corrupting it (truncating, rewriting the JSON header in place, patching
// data bytes, editing config.json / the shard index), or by writing safetensors by hand.
// The make-model folder tests check that write_synthetic_model replaces its own earlier output
// completely (no stale index or shards for the loader to prefer), refuses other files, and
// leaves nothing behind when it fails.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/llama_weights.h"
#include "model/safetensors.h"
#include "model/synthetic_model.h"
#include "test_util.h"

namespace qsweep {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// ---- helpers ------------------------------------------------------------------------------------

using test::read_bytes;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A safetensors file by hand: 8-byte little-endian header length, the header, the data section.
std::string safetensors_bytes(const std::string& header, const std::string& data,
                              uint64_t header_len_field) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((header_len_field >> (8 * i)) & 0xff);
  return s + header + data;
}
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return safetensors_bytes(header, data, header.size());
}

// Runs f, which must throw qsweep::Error whose message contains every string in `want`.
// Returns the message (empty when it did not throw as expected).
std::string expect_error(const std::function<void()>& f, std::initializer_list<std::string> want) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& w : want)
      EXPECT_NE(msg.find(w), std::string::npos)
          << "error message does not mention '" << w << "':\n  " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a std::exception that is not qsweep::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw qsweep::Error";
  return "";
}

// Small but complete Llama-shaped model: H 64, I 128 (so gate_proj is [128, 64]), 2 blocks.
SyntheticModelSpec small_spec() {
  SyntheticModelSpec s;
  s.hidden = 64;
  s.intermediate = 128;
  s.layers = 2;
  s.heads = 4;
  s.kv_heads = 2;
  s.vocab = 128;
  s.max_positions = 256;
  s.seed = 7;
  return s;
}

// Scratch directories of this process, removed when the tests end (kept when a test failed, for
// inspection).
std::vector<std::string>& scratch_parents() {
  static std::vector<std::string> v;
  return v;
}
class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (::testing::UnitTest::GetInstance()->failed_test_count() > 0) return;
    for (const auto& d : scratch_parents()) std::filesystem::remove_all(d);
  }
};
[[maybe_unused]] ::testing::Environment* const kScratchCleanup =
    ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

std::string scratch(const std::string& name) {
  const std::string dir = test::scratch_dir(name);
  scratch_parents().push_back(std::filesystem::path(dir).parent_path().string());
  return dir;
}

std::string make_model(const std::string& name, SyntheticModelSpec spec = small_spec()) {
  const std::string dir = scratch(name);
  write_synthetic_model(dir, spec);
  return dir;
}

// Rewrites the JSON header of a safetensors file in place: the header is parsed, edited by fn,
// re-serialised compactly and padded with spaces to its old length, so the data section and all
// unedited offsets stay valid.
void edit_header(const std::string& path, const std::function<void(ordered_json&)>& fn) {
  std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
  ASSERT_LE(8 + hlen, bytes.size());
  ordered_json h = ordered_json::parse(bytes.substr(8, hlen));
  fn(h);
  std::string hs = h.dump();
  ASSERT_LE(hs.size(), hlen) << "edited header must not grow";
  hs.resize(hlen, ' ');
  bytes.replace(8, hlen, hs);
  write_bytes(path, bytes);
}

// Overwrites element `index` of tensor `name` in the safetensors file at `path` with `raw`
// (dtype_size bytes, little-endian).
void patch_element(const std::string& path, const std::string& name, int64_t index,
                   const std::string& raw) {
  uint64_t begin = 0;
  size_t es = 0;
  {
    SafetensorsFile f(path);
    const TensorInfo* t = f.find(name);
    ASSERT_NE(t, nullptr) << name;
    begin = t->begin;
    es = dtype_size(t->dtype);
    ASSERT_EQ(raw.size(), es);
    ASSERT_LT(index, t->numel());
  }
  std::string bytes = read_bytes(path);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
  bytes.replace(8 + hlen + begin + static_cast<uint64_t>(index) * es, es, raw);
  write_bytes(path, bytes);
}

std::string u16_le(uint16_t v) {
  return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
}

void edit_json_file(const std::string& path, const std::function<void(ordered_json&)>& fn) {
  std::ifstream in(path);
  ordered_json j = ordered_json::parse(in);
  in.close();
  fn(j);
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(2) << "\n";
}

// ---- safetensors container (SafetensorsFile) ----------------------------------------------------

TEST(LoaderSafetensors, TruncatedBelowHeaderLength) {
  const std::string dir = scratch("trunc");
  const std::string p = dir + "/model.safetensors";
  write_bytes(p, std::string("\x10\x00\x00\x00\x00", 5));  // 5 bytes: not even the length field
  expect_error([&] { SafetensorsFile f(p); }, {p, "truncated"});
}

TEST(LoaderSafetensors, TruncatedModelFileViaLlamaWeights) {
  // A real checkpoint cut to 4 bytes (an interrupted download) is reported by the model loader.
  const std::string dir = make_model("trunc-model");
  const std::string p = dir + "/model.safetensors";
  ASSERT_EQ(::truncate(p.c_str(), 4), 0);
  expect_error([&] { LlamaWeights w(dir); }, {p, "truncated"});
}

TEST(LoaderSafetensors, HeaderLengthPastEndOfFile) {
  const std::string dir = scratch("hlen");
  const std::string p = dir + "/model.safetensors";
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  // The length field claims 1000 header bytes; the file holds 8 + header + 4.
  write_bytes(p, safetensors_bytes(header, std::string(4, '\0'), 1000));
  expect_error([&] { SafetensorsFile f(p); }, {p, "1000"});
}

TEST(LoaderSafetensors, RealModelTruncatedInsideHeader) {
  // Cut to 100 bytes: the length field is intact but points past the end (what `truncate -s 100`
  // does to a downloaded file).
  const std::string dir = make_model("trunc-100");
  const std::string p = dir + "/model.safetensors";
  ASSERT_EQ(::truncate(p.c_str(), 100), 0);
  expect_error([&] { Checkpoint c(dir); }, {p, "header length"});
}

TEST(LoaderSafetensors, HeaderNotJson) {
  const std::string dir = scratch("notjson");
  const std::string p = dir + "/model.safetensors";
  write_bytes(p, safetensors_bytes("{\"a\": {\"dtype\": \"F32\", oops}  ", std::string(4, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, {p, "JSON"});
}

TEST(LoaderSafetensors, HeaderJsonButNotObject) {
  const std::string dir = scratch("notobj");
  const std::string p = dir + "/model.safetensors";
  write_bytes(p, safetensors_bytes("[1, 2, 3]", ""));
  expect_error([&] { SafetensorsFile f(p); }, {p, "object"});
}

TEST(LoaderSafetensors, DataOffsetsOutOfBounds) {
  // Size matches shape x dtype (8 bytes) but [8, 16) lies beyond the 8-byte data section.
  const std::string dir = scratch("oob");
  const std::string p = dir + "/model.safetensors";
  const std::string header =
      R"({"ok.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("far.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  write_bytes(p, safetensors_bytes(header, std::string(8, '\0')));
  const std::string msg = expect_error([&] { SafetensorsFile f(p); }, {p, "far.weight"});
  EXPECT_EQ(msg.find("ok.weight"), std::string::npos) << "blames the wrong tensor: " << msg;
}

TEST(LoaderSafetensors, OverlappingTensors) {
  // a = [0, 8), b = [4, 12): both in bounds and correctly sized, but sharing bytes 4..8.
  const std::string dir = scratch("overlap");
  const std::string p = dir + "/model.safetensors";
  const std::string header =
      R"({"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b.weight":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  write_bytes(p, safetensors_bytes(header, std::string(12, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, {p, "a.weight", "b.weight", "overlap"});
}

TEST(LoaderSafetensors, OverlapInRealModelViaCheckpoint) {
  // Point one block-1 tensor at the bytes of a block-0 tensor of the same size.
  const std::string dir = make_model("overlap-model");
  const std::string p = dir + "/model.safetensors";
  edit_header(p, [](ordered_json& h) {
    h["model.layers.1.self_attn.k_proj.weight"]["data_offsets"] =
        h["model.layers.0.self_attn.k_proj.weight"]["data_offsets"];
  });
  expect_error([&] { Checkpoint c(dir); },
               {p, "model.layers.0.self_attn.k_proj.weight", "model.layers.1.self_attn.k_proj.weight"});
}

TEST(LoaderSafetensors, ByteSizeDisagreesWithShape) {
  // shape [2, 3] x F32 needs 24 bytes; offsets give 20 (in bounds of the 24-byte section).
  const std::string dir = scratch("size");
  const std::string p = dir + "/model.safetensors";
  const std::string header =
      R"({"w.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})";
  write_bytes(p, safetensors_bytes(header, std::string(24, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, {p, "w.weight", "24"});
}

TEST(LoaderSafetensors, ByteSizeDisagreesInRealModel) {
  // model.norm.weight is [64] BF16 = 128 bytes; relabel it F32 (needs 256) with the same offsets.
  // Shape and dtype are acceptable to LlamaWeights, so only the size check can catch it.
  const std::string dir = make_model("size-model");
  const std::string p = dir + "/model.safetensors";
  edit_header(p, [](ordered_json& h) { h["model.norm.weight"]["dtype"] = "F32"; });
  expect_error([&] { LlamaWeights w(dir); }, {p, "model.norm.weight", "256"});
}

TEST(LoaderSafetensors, UnknownDtype) {
  // "Q4" with a byte size that would be consistent for a 4-byte dtype: only the dtype check fires.
  const std::string dir = scratch("dtype");
  const std::string p = dir + "/model.safetensors";
  const std::string header =
      R"({"q.weight":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})";
  write_bytes(p, safetensors_bytes(header, std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, {p, "q.weight", "Q4"});
}

TEST(LoaderSafetensors, UnknownDtypeInRealModel) {
  // BF16 -> "Q4": same byte count would only be consistent for a 2-byte dtype.
  const std::string dir = make_model("dtype-model");
  const std::string p = dir + "/model.safetensors";
  edit_header(p, [](ordered_json& h) { h["model.layers.0.mlp.up_proj.weight"]["dtype"] = "Q4"; });
  expect_error([&] { LlamaWeights w(dir); },
               {p, "model.layers.0.mlp.up_proj.weight", "Q4", "dtype"});
}

// ---- tensors the config needs (LlamaWeights) ----------------------------------------------------

TEST(LoaderWeights, MissingTensor) {
  const std::string dir = make_model("missing");
  edit_header(dir + "/model.safetensors",
              [](ordered_json& h) { h.erase("model.layers.1.mlp.down_proj.weight"); });
  Checkpoint c(dir);  // the container itself is still valid
  EXPECT_EQ(c.find("model.layers.1.mlp.down_proj.weight"), nullptr);
  expect_error([&] { LlamaWeights w(dir); }, {dir, "model.layers.1.mlp.down_proj.weight"});
}

TEST(LoaderWeights, MissingLmHeadWhenUntied) {
  const std::string dir = make_model("missing-head");
  edit_header(dir + "/model.safetensors", [](ordered_json& h) { h.erase("lm_head.weight"); });
  expect_error([&] { LlamaWeights w(dir); }, {dir, "lm_head.weight"});
}

TEST(LoaderWeights, ShapeDisagreesWithConfig) {
  // gate_proj must be [intermediate 128, hidden 64]; swap to [64, 128] (same byte count, so the
  // container is valid and only the config check can catch it).
  const std::string dir = make_model("shape");
  const std::string p = dir + "/model.safetensors";
  edit_header(p, [](ordered_json& h) {
    h["model.layers.1.mlp.gate_proj.weight"]["shape"] = {64, 128};
  });
  EXPECT_NO_THROW({ Checkpoint c(dir); });
  expect_error([&] { LlamaWeights w(dir); },
               {p, "model.layers.1.mlp.gate_proj.weight", "config.json", "[128, 64]"});
}

TEST(LoaderWeights, ShapeDisagreesAfterConfigEdit) {
  // The checkpoint is fine but config.json says a different vocabulary: the embedding mismatches.
  const std::string dir = make_model("shape-cfg");
  edit_json_file(dir + "/config.json", [](ordered_json& j) { j["vocab_size"] = 256; });
  expect_error([&] { LlamaWeights w(dir); },
               {dir + "/model.safetensors", "model.embed_tokens.weight", "config.json"});
}

// ---- sharded checkpoints (model.safetensors.index.json) -----------------------------------------

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b,
                        const std::string& what);

const char* kShard1 = "model-00001-of-00003.safetensors";
const char* kShard2 = "model-00002-of-00003.safetensors";

TEST(LoaderShards, IndexNamesMissingShardFile) {
  SyntheticModelSpec s = small_spec();
  s.shards = 3;
  const std::string dir = make_model("shard-missing", s);
  ASSERT_TRUE(test::path_exists(dir + "/model.safetensors.index.json"));
  ASSERT_EQ(::unlink((dir + "/" + kShard2).c_str()), 0);
  expect_error([&] { Checkpoint c(dir); },
               {dir + "/model.safetensors.index.json", kShard2});
  expect_error([&] { LlamaWeights w(dir); }, {"model.safetensors.index.json", kShard2});
}

TEST(LoaderShards, IndexMapsTensorToShardThatLacksIt) {
  SyntheticModelSpec s = small_spec();
  s.shards = 3;
  const std::string dir = make_model("shard-lacks", s);
  const std::string index = dir + "/model.safetensors.index.json";
  // model.norm.weight is written near the end, in shard 3; claim it is in shard 1.
  edit_json_file(index, [](ordered_json& j) {
    ASSERT_NE(j["weight_map"]["model.norm.weight"].get<std::string>(), kShard1);
    j["weight_map"]["model.norm.weight"] = kShard1;
  });
  expect_error([&] { Checkpoint c(dir); }, {index, "model.norm.weight", kShard1});
}

TEST(LoaderShards, CorruptShardNamedByPath) {
  // A broken shard is reported with the shard's own path, not just the directory.
  SyntheticModelSpec s = small_spec();
  s.shards = 3;
  const std::string dir = make_model("shard-corrupt", s);
  const std::string p = dir + "/" + kShard2;
  ASSERT_EQ(::truncate(p.c_str(), 6), 0);
  expect_error([&] { Checkpoint c(dir); }, {p});
}

TEST(LoaderShards, SingleFileNextToDisagreeingIndexRefused) {
  // A sharded folder that also holds a model.safetensors (a newer single file next to an old
  // index, or the reverse): which one is stale cannot be told, so neither is read.
  SyntheticModelSpec s = small_spec();
  s.shards = 3;
  const std::string dir = make_model("both", s);
  const std::string single = make_model("both-single");
  std::filesystem::copy_file(single + "/model.safetensors", dir + "/model.safetensors");
  const std::string msg = expect_error([&] { Checkpoint c(dir); },
                                       {dir + "/model.safetensors", dir + "/model.safetensors.index.json",
                                        kShard1, "not model.safetensors"});
  expect_error([&] { LlamaWeights w(dir); }, {"model.safetensors.index.json", "disagree"});
  // An index that maps some tensors to model.safetensors and others to a shard disagrees too.
  edit_json_file(dir + "/model.safetensors.index.json",
                 [](ordered_json& j) { j["weight_map"]["model.norm.weight"] = "model.safetensors"; });
  expect_error([&] { Checkpoint c(dir); }, {dir + "/model.safetensors", "besides model.safetensors"});
}

TEST(LoaderShards, IndexListingOnlyModelSafetensorsAgrees) {
  // Some exports ship a single file with an index naming it: both say the same, so it loads.
  const std::string dir = make_model("both-agree");
  ordered_json idx;
  idx["metadata"] = ordered_json::object();
  {
    Checkpoint c(dir);
    for (const auto& n : c.tensor_names()) idx["weight_map"][n] = "model.safetensors";
  }
  std::ofstream(dir + "/model.safetensors.index.json") << idx.dump(2);
  LlamaWeights w(dir);
  EXPECT_EQ(w.checkpoint().file_of("lm_head.weight"), dir + "/model.safetensors");
}

// ---- make-model folders (write_synthetic_model) --------------------------------------------------

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : std::filesystem::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(LoaderMakeModel, ReplacesEarlierShardedOutputCompletely) {
  // The bug: a single-file model written over a sharded one left the old index and shards, and
  // the loader read the old weights.
  SyntheticModelSpec sharded = small_spec();
  sharded.shards = 3;
  const std::string dir = make_model("replace", sharded);
  SyntheticModelSpec single = small_spec();
  single.seed = 8;
  write_synthetic_model(dir, single);
  EXPECT_EQ(entries(dir), (std::vector<std::string>{".qsweep-make-model", "config.json", "model.safetensors"}));
  // Bit-identical to the same spec written into a fresh folder.
  const std::string fresh = make_model("replace-fresh", single);
  LlamaWeights a(dir), b(fresh);
  expect_same_floats(a.load_lm_head(), b.load_lm_head(), "lm_head");
  expect_same_floats(a.load_block(1)->qkv, b.load_block(1)->qkv, "block 1 qkv");
  // And back: sharded over single leaves no model.safetensors.
  write_synthetic_model(dir, sharded);
  EXPECT_FALSE(test::path_exists(dir + "/model.safetensors"));
  EXPECT_TRUE(test::path_exists(dir + "/model.safetensors.index.json"));
  LlamaWeights c(dir);
  // Nothing left in the parent but the model folder (no temporary or set-aside folders).
  EXPECT_EQ(entries(std::filesystem::path(dir).parent_path().string()), (std::vector<std::string>{"replace"}));
}

TEST(LoaderMakeModel, RefusesFolderWithOtherFilesNamingThem) {
  const std::string dir = scratch("foreign");
  std::ofstream(dir + "/notes.txt") << "mine";
  expect_error([&] { write_synthetic_model(dir, small_spec()); }, {dir, "notes.txt"});
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"notes.txt"}));
  // An earlier make-model output with a file added by hand is not make-model's either.
  const std::string m = make_model("foreign-added");
  std::ofstream(m + "/tokenizer.json") << "{}";
  expect_error([&] { write_synthetic_model(m, small_spec()); }, {m, "tokenizer.json"});
  EXPECT_TRUE(test::path_exists(m + "/model.safetensors"));
  EXPECT_EQ(entries(std::filesystem::path(m).parent_path().string()),
            (std::vector<std::string>{"foreign-added"}));
}

TEST(LoaderMakeModel, MissingTokenizerWritesNothing) {
  const std::string parent = scratch("notok");
  SyntheticModelSpec s = small_spec();
  s.tokenizer = parent + "/no-such-tokenizer.model";
  expect_error([&] { write_synthetic_model(parent + "/m", s); }, {s.tokenizer});
  EXPECT_TRUE(entries(parent).empty());
}

// ---- non-finite weights (found when the tensor is converted) ------------------------------------

TEST(LoaderValues, NaNInWeightReportedByLoadBlock) {
  const std::string dir = make_model("nan");
  const std::string p = dir + "/model.safetensors";
  patch_element(p, "model.layers.1.mlp.down_proj.weight", 5, u16_le(0x7fc0));  // bf16 NaN
  LlamaWeights w(dir);  // headers only: opening succeeds
  EXPECT_NO_THROW(w.load_block(0));
  expect_error([&] { w.load_block(1); }, {p, "model.layers.1.mlp.down_proj.weight"});
}

TEST(LoaderValues, PosInfInWeightReportedByReadF32) {
  const std::string dir = make_model("inf");
  const std::string p = dir + "/model.safetensors";
  const std::string name = "model.layers.0.self_attn.k_proj.weight";
  patch_element(p, name, 17, u16_le(0x7f80));  // bf16 +inf
  Checkpoint c(dir);
  std::vector<float> buf(static_cast<size_t>(c.find(name)->numel()));
  expect_error([&] { c.read_f32(name, buf.data()); }, {p, name});
  LlamaWeights w(dir);
  expect_error([&] { w.load_block(0); }, {p, name});
}

TEST(LoaderValues, FirstNonFiniteNamedWhenTheCheckRunsOnThreads) {
  // 256 × 768 = 196608 values: converted and checked over threads; the message names the lowest
  // flat index of the two bad values, whichever thread met which.
  SyntheticModelSpec s = small_spec();
  s.hidden = 256;
  s.intermediate = 768;
  s.heads = 8;
  s.kv_heads = 4;
  const std::string dir = make_model("nan-threads", s);
  const std::string p = dir + "/model.safetensors";
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  patch_element(p, name, 150000, u16_le(0x7fc0));  // bf16 NaN, in the second half
  patch_element(p, name, 70001, u16_le(0xff80));   // bf16 -inf, the first
  Checkpoint c(dir);
  std::vector<float> buf(static_cast<size_t>(c.find(name)->numel()));
  ASSERT_EQ(buf.size(), 196608u);
  expect_error([&] { c.read_f32(name, buf.data()); }, {p, name, "flat index 70001"});
}

TEST(LoaderValues, PosInfInF16ShardedLmHead) {
  // The same check on the fp16 path, in a sharded checkpoint, through load_lm_head.
  SyntheticModelSpec s = small_spec();
  s.dtype = DType::F16;
  s.shards = 3;
  const std::string dir = make_model("inf-f16", s);
  std::string shard;
  {
    Checkpoint c0(dir);
    shard = c0.file_of("lm_head.weight");
  }  // unmapped before the file is rewritten
  patch_element(shard, "lm_head.weight", 100, u16_le(0x7c00));  // f16 +inf
  LlamaWeights w(dir);
  expect_error([&] { w.load_lm_head(); }, {shard, "lm_head.weight"});
}

// ---- config.json ------------------------------------------------------------------------------

TEST(LoaderConfig, MissingHiddenSize) {
  const std::string dir = make_model("cfg-hidden");
  edit_json_file(dir + "/config.json", [](ordered_json& j) { j.erase("hidden_size"); });
  expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json", "hidden_size"});
}

TEST(LoaderConfig, UnsupportedModelTypeGpt2) {
  const std::string dir = make_model("cfg-gpt2");
  edit_json_file(dir + "/config.json", [](ordered_json& j) { j["model_type"] = "gpt2"; });
  expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json", "model_type", "gpt2"});
}

TEST(LoaderConfig, HeadsNotMultipleOfKvHeads) {
  // 4 query heads cannot be shared evenly by 3 key/value heads.
  const std::string dir = make_model("cfg-gqa");
  edit_json_file(dir + "/config.json", [](ordered_json& j) { j["num_key_value_heads"] = 3; });
  expect_error([&] { LlamaWeights w(dir); },
               {dir + "/config.json", "num_attention_heads", "num_key_value_heads"});
}

TEST(LoaderConfig, UnsupportedRopeScalingType) {
  const std::string dir = make_model("cfg-rope");
  edit_json_file(dir + "/config.json", [](ordered_json& j) {
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  });
  expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json", "rope_scaling", "yarn"});
}

TEST(LoaderConfig, UnsupportedRopeScalingLegacyTypeKey) {
  // Older configs spell it "type"; "linear" scaling is not implemented either.
  const std::string dir = make_model("cfg-rope2");
  edit_json_file(dir + "/config.json", [](ordered_json& j) {
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  });
  expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json", "rope_scaling", "linear"});
}

TEST(LoaderConfig, ConfigNotJson) {
  const std::string dir = make_model("cfg-json");
  write_bytes(dir + "/config.json", "{\"model_type\": \"llama\", hidden_size: 64");
  expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json", "JSON"});
}

TEST(LoaderConfig, MissingConfigFile) {
  const std::string dir = make_model("cfg-none");
  ASSERT_EQ(::unlink((dir + "/config.json").c_str()), 0);
  expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json"});
}

TEST(LoaderConfig, Llama3RopeScalingMissingFieldRefusedByName) {
  // transformers needs all four; a default would silently move every rotary frequency.
  for (const char* field : {"factor", "low_freq_factor", "high_freq_factor",
                            "original_max_position_embeddings"}) {
    SyntheticModelSpec s = small_spec();
    s.llama3_rope = true;
    const std::string dir = make_model(std::string("cfg-llama3-") + field, s);
    EXPECT_NO_THROW(ModelConfig::from_file(dir + "/config.json"));
    edit_json_file(dir + "/config.json", [&](ordered_json& j) { j["rope_scaling"].erase(field); });
    expect_error([&] { LlamaWeights w(dir); }, {dir + "/config.json", "rope_scaling", field});
  }
}

TEST(LoaderConfig, CheckpointHoldsMoreBlocksThanConfig) {
  // 2 blocks in the checkpoint, num_hidden_layers 1: evaluating one block would be another model.
  const std::string dir = make_model("cfg-layers");
  edit_json_file(dir + "/config.json", [](ordered_json& j) { j["num_hidden_layers"] = 1; });
  expect_error([&] { LlamaWeights w(dir); },
               {dir + "/model.safetensors", "model.layers.1.", "num_hidden_layers", "config.json"});
}

TEST(LoaderConfig, TiedEmbeddingsIgnoreLmHeadWithWarning) {
  // As transformers does: tie_word_embeddings true makes the output layer the embedding even
  // when lm_head.weight is stored; qsweep says so on stderr.
  const std::string dir = make_model("cfg-tied-head");
  edit_json_file(dir + "/config.json", [](ordered_json& j) { j["tie_word_embeddings"] = true; });
  testing::internal::CaptureStderr();
  LlamaWeights w(dir);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("lm_head.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("tie_word_embeddings"), std::string::npos) << err;
  EXPECT_EQ(w.lm_head_name(), "model.embed_tokens.weight");
  std::vector<float> emb(static_cast<size_t>(128 * 64));
  w.checkpoint().read_f32("model.embed_tokens.weight", emb.data());
  expect_same_floats(w.load_lm_head(), emb, "tied lm_head");
}

// Replaces `"key": <old>` in a JSON file's text by `"key": <literal>` (numbers nlohmann would
// re-print differently: 1e19, 10000000000000000000).
void set_literal(const std::string& path, const std::string& key, const std::string& literal) {
  std::string text = read_bytes(path);
  const std::string k = "\"" + key + "\": ";
  const size_t p = text.find(k);
  ASSERT_NE(p, std::string::npos) << key;
  const size_t v = p + k.size(), end = text.find_first_of(",\n}", v);
  text.replace(v, end - v, literal);
  write_bytes(path, text);
}

TEST(LoaderConfig, OverflowingSizesReportedAsWrittenAndOutOfRange) {
  for (const std::string lit : {"10000000000000000000", "3000000000", "1e19", "18446744073709551616"}) {
    const std::string dir = make_model("cfg-overflow");
    set_literal(dir + "/config.json", "hidden_size", lit);
    const std::string msg = expect_error([&] { LlamaWeights w(dir); },
                                         {dir + "/config.json", "hidden_size", lit, "out of range"});
    EXPECT_EQ(msg.find(" -"), std::string::npos) << "a negative number in: " << msg;
  }
  const std::string dir = make_model("cfg-overflow-bos");
  set_literal(dir + "/config.json", "bos_token_id", "3000000000");
  expect_error([&] { LlamaWeights w(dir); }, {"bos_token_id", "3000000000", "out of range"});
  // Each size fits an int but the fused q/k/v rows would not.
  const std::string d2 = make_model("cfg-overflow-heads");
  edit_json_file(d2 + "/config.json", [](ordered_json& j) { j["head_dim"] = 1 << 30; });
  expect_error([&] { LlamaWeights w(d2); }, {d2 + "/config.json", "head_dim", "out of range"});
}

// ---- a good checkpoint ------------------------------------------------------------------------

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b,
                        const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
      << what << " differs between the single-file and sharded checkpoints";
}

TEST(LoaderGood, SyntheticModelLoadsAndBlocksMatchTensors) {
  const std::string dir = make_model("good");
  LlamaWeights w(dir);
  const ModelConfig& c = w.config();
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 128);
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    auto b = w.load_block(i);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->index, i);
    EXPECT_EQ(b->input_norm.size(), 64u);
    EXPECT_EQ(b->qkv.size(), static_cast<size_t>((64 + 2 * 32) * 64));
    EXPECT_EQ(b->gate_up.size(), static_cast<size_t>(2 * 128 * 64));
    EXPECT_EQ(b->down.size(), static_cast<size_t>(64 * 128));
    EXPECT_TRUE(b->qkv_bias.empty());  // llama: no biases
    for (float v : b->qkv) ASSERT_TRUE(std::isfinite(v));
    // Each fused module is exactly the checkpoint tensor, converted.
    for (int l = 0; l < kNumLinear; ++l) {
      const Linear L = static_cast<Linear>(l);
      const std::string name = linear_module_name(i, L) + ".weight";
      std::vector<float> t(static_cast<size_t>(w.checkpoint().find(name)->numel()));
      w.checkpoint().read_f32(name, t.data());
      ASSERT_EQ(t.size(), static_cast<size_t>(b->out_features(L)) * b->in_features(L)) << name;
      EXPECT_EQ(std::memcmp(t.data(), b->linear(L), t.size() * sizeof(float)), 0) << name;
    }
  }
  const auto head = w.load_lm_head();
  EXPECT_EQ(head.size(), static_cast<size_t>(128 * 64));
  EXPECT_EQ(w.load_final_norm().size(), 64u);
}

TEST(LoaderGood, ShardedAndSingleFileAreBitIdentical) {
  const SyntheticModelSpec one = small_spec();
  SyntheticModelSpec three = small_spec();
  three.shards = 3;
  const std::string d1 = make_model("one", one);
  const std::string d3 = make_model("three", three);
  ASSERT_FALSE(test::path_exists(d1 + "/model.safetensors.index.json"));
  ASSERT_TRUE(test::path_exists(d3 + "/model.safetensors.index.json"));
  ASSERT_TRUE(test::path_exists(d3 + "/model-00003-of-00003.safetensors"));
  ASSERT_FALSE(test::path_exists(d3 + "/model.safetensors"));

  LlamaWeights w1(d1), w3(d3);
  ASSERT_EQ(w1.checkpoint().tensor_names(), w3.checkpoint().tensor_names());
  // The shards really split the tensors across files.
  EXPECT_NE(w3.checkpoint().file_of("model.embed_tokens.weight"),
            w3.checkpoint().file_of("lm_head.weight"));
  for (int i = 0; i < w1.config().num_hidden_layers; ++i) {
    auto a = w1.load_block(i), b = w3.load_block(i);
    const std::string blk = "block " + std::to_string(i) + " ";
    expect_same_floats(a->input_norm, b->input_norm, blk + "input_norm");
    expect_same_floats(a->post_norm, b->post_norm, blk + "post_norm");
    expect_same_floats(a->qkv, b->qkv, blk + "qkv");
    expect_same_floats(a->o, b->o, blk + "o");
    expect_same_floats(a->gate_up, b->gate_up, blk + "gate_up");
    expect_same_floats(a->down, b->down, blk + "down");
  }
  expect_same_floats(w1.load_lm_head(), w3.load_lm_head(), "lm_head");
  expect_same_floats(w1.load_final_norm(), w3.load_final_norm(), "final norm");
}

}  // namespace
}  // namespace qsweep
