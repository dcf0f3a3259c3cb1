// hf_bpe.h — the BPE model of tokenizer.json: a vocabulary, ranked merges, and the merge loop
// the Hugging Face tokenizers library runs on each pre-token (lowest-rank adjacent pair first,
// leftmost among equal ranks, through a priority queue), with byte_fallback (<0xNN> tokens for
// characters outside the vocabulary), unk_token / fuse_unk, ignore_merges,
// continuing_subword_prefix and end_of_word_suffix.
//
// Results are cached per pre-token (most words recur: KJV's 3.7 MB has ~13k distinct pre-tokens
// among ~900k), so the merge loop runs once per distinct word.
//
// Byte mode: behind a final ByteLevel pre-tokenizer, the model can match raw bytes instead of
// the byte-level characters that stand for them. The vocabulary is then un-mapped once at load,
// and the pre-tokenizer skips its mapping (ByteLevelPreTokenizer::set_raw_output).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/flat_string_map.h"
#include "model/hf_json.h"

namespace qsweep {

/// Token ids (model.vocab, added_tokens) must stay below this: they index dense id -> token
/// tables, so 2^24 (64x the largest real vocabulary) keeps those under 1 GB where an id near
/// 2^31 would ask for 64 GB.
constexpr int64_t kMaxTokenId = int64_t(1) << 24;

class BpeModel {
 public:
  /// j = the "model" member (type "BPE").
  explicit BpeModel(const JsonAt& j);

  /// Appends the ids of one pre-token. Not thread-safe (the cache); the tokenizer serialises.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  /// Switches to raw-byte matching (see above); false when the configuration does not allow it
  /// (a continuing_subword_prefix or end_of_word_suffix).
  bool enable_byte_mode();
  bool byte_mode() const { return byte_mode_; }
  bool byte_fallback() const { return byte_fallback_; }

  /// The vocabulary as written in the file: token -> id, and id -> token ("" for holes).
  const FlatStringMap<int32_t>& vocab() const { return vocab_; }
  const std::vector<std::string>& tokens_by_id() const { return by_id_; }
  size_t merges() const { return n_merges_; }

 private:
  struct MergeEntry {
    uint64_t key;  // (left id << 32) | right id; UINT64_MAX = empty
    int32_t rank, new_id;
  };
  const MergeEntry* find_merge(int32_t a, int32_t b) const {
    const uint64_t k = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
    for (size_t i = (k * 0x9E3779B97F4A7C15ull) >> merge_shift_;; i = (i + 1) & merge_mask_) {
      const MergeEntry& e = merge_table_[i];
      if (e.key == k) return &e;
      if (e.key == UINT64_MAX) return nullptr;
    }
  }
  void add_merge(int32_t a, int32_t b, int32_t rank, int32_t new_id);
  void merge_word(std::string_view piece, std::vector<int32_t>& out) const;
  int32_t lookup(std::string_view s) const {
    const int32_t* id = lookup_->find(s);
    return id ? *id : -1;
  }

  FlatStringMap<int32_t> vocab_;       // as in the file
  FlatStringMap<int32_t> byte_vocab_;  // byte mode: un-mapped keys
  const FlatStringMap<int32_t>* lookup_ = &vocab_;
  std::vector<std::string> by_id_;
  std::vector<MergeEntry> merge_table_;
  size_t merge_mask_ = 0, n_merges_ = 0;
  int merge_shift_ = 64;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  std::string unk_token_;
  bool has_unk_ = false, fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  bool byte_mode_ = false;
  int32_t byte_fallback_ids_[256];
  std::string where_;  // "<file>: model" for errors at encode time

  // Per-pre-token cache: piece -> (offset, count) into cache_ids_.
  mutable FlatStringMap<uint64_t> cache_;
  mutable std::vector<int32_t> cache_ids_;
  // Scratch of the merge loop.
  struct Symbol {
    int32_t id, prev, next;
    uint32_t len;  // 0 = merged away
  };
  struct QueueItem {
    int32_t rank, pos, new_id;
  };
  mutable std::vector<Symbol> symbols_;
  mutable std::vector<QueueItem> queue_;
  mutable std::string unit_;
};

}  // namespace qsweep
