// hf_bpe.cc — BPE: loading with validation, the cached per-pre-token merge loop.
#include "model/hf_bpe.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/utf8.h"
#include "model/hf_byte_level.h"

namespace qsweep {

namespace {
constexpr size_t kCacheMaxEntries = size_t(1) << 20;  // then the cache starts over
constexpr size_t kCacheMaxPiece = 256;                // longer pieces are not cached (as in Rust)
}  // namespace

BpeModel::BpeModel(const JsonAt& j) : where_(j.file() + ": " + j.path()) {
  const JsonAt vocab = j["vocab"];
  vocab.expect_object();
  int64_t max_id = -1;
  for (const auto& [tok, idj] : vocab.json().items()) {
    const JsonAt at(idj, j.file(), vocab.path() + "[\"" + tok + "\"]");
    const int64_t id = at.integer();
    if (id < 0 || id >= kMaxTokenId) at.fail("token id " + std::to_string(id) + " is out of range [0, 2^24)");
    max_id = std::max(max_id, id);
  }
  by_id_.assign(size_t(max_id + 1), std::string());
  std::vector<bool> seen(by_id_.size(), false);
  for (const auto& [tok, idj] : vocab.json().items()) {
    const auto id = idj.get<int32_t>();
    if (seen[id])
      vocab.fail("id " + std::to_string(id) + " is given to both \"" + by_id_[id] + "\" and \"" + tok + "\"");
    seen[id] = true;
    by_id_[id] = tok;
    vocab_.insert(tok, id);
  }

  if (j.has("dropout")) {
    const JsonAt d = j["dropout"];
    if (!d.json().is_number()) d.fail("expected a number or null, found " + json_type_name(d.json()));
    if (d.json().get<double>() != 0.0) d.fail("BPE dropout is not supported (it makes encoding random)");
  }
  prefix_ = j.str_or("continuing_subword_prefix", "");
  suffix_ = j.str_or("end_of_word_suffix", "");
  has_unk_ = j.has("unk_token");
  if (has_unk_) unk_token_ = j["unk_token"].str();
  fuse_unk_ = j.bool_or("fuse_unk", false);
  byte_fallback_ = j.bool_or("byte_fallback", false);
  ignore_merges_ = j.bool_or("ignore_merges", false);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const int32_t* id = vocab_.find(name);
    byte_fallback_ids_[b] = id ? *id : -1;
  }

  // Merges: "a b" strings (the older format) or ["a", "b"] pairs. A later duplicate overrides
  // an earlier one, as in the Rust library's hash map.
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const JsonAt ml = j.has("merges") ? j["merges"] : JsonAt(kEmpty, j.file(), j.path() + ".merges");
  ml.expect_array();
  n_merges_ = ml.size();
  size_t cap = 16;
  while (cap < 2 * n_merges_ + 2) cap *= 2;
  merge_table_.assign(cap, MergeEntry{UINT64_MAX, 0, 0});
  merge_mask_ = cap - 1;
  merge_shift_ = 64 - __builtin_ctzll(cap);
  for (size_t i = 0; i < n_merges_; ++i) {
    const JsonAt m = ml.at(i);
    std::string a, b;
    if (m.json().is_string()) {
      const std::string s = m.str();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        m.fail("expected \"left right\" (two tokens separated by one space), found \"" + s + "\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.json().is_array()) {
      if (m.size() != 2) m.fail("expected a pair [\"left\", \"right\"], found " + std::to_string(m.size()) + " elements");
      a = m.at(0).str();
      b = m.at(1).str();
    } else {
      m.fail("expected a string \"left right\" or a pair [\"left\", \"right\"], found " + json_type_name(m.json()));
    }
    const int32_t* ia = vocab_.find(a);
    const int32_t* ib = vocab_.find(b);
    if (!ia) m.fail("merge token \"" + a + "\" is not in model.vocab");
    if (!ib) m.fail("merge token \"" + b + "\" is not in model.vocab");
    const std::string merged = a + (b.size() >= prefix_.size() ? b.substr(prefix_.size()) : std::string());
    const int32_t* inew = vocab_.find(merged);
    if (!inew) m.fail("the merged token \"" + merged + "\" is not in model.vocab");
    add_merge(*ia, *ib, static_cast<int32_t>(i), *inew);
  }
}

void BpeModel::add_merge(int32_t a, int32_t b, int32_t rank, int32_t new_id) {
  const uint64_t k = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  for (size_t i = (k * 0x9E3779B97F4A7C15ull) >> merge_shift_;; i = (i + 1) & merge_mask_) {
    MergeEntry& e = merge_table_[i];
    if (e.key == UINT64_MAX || e.key == k) {
      e = MergeEntry{k, rank, new_id};
      return;
    }
  }
}

bool BpeModel::enable_byte_mode() {
  if (!prefix_.empty() || !suffix_.empty()) return false;
  byte_vocab_.clear();
  std::string raw;
  for (size_t id = 0; id < by_id_.size(); ++id) {
    if (by_id_[id].empty()) continue;
    raw.clear();
    // Tokens with characters outside the byte-level alphabet can never be matched in byte
    // mode, nor can they in the mapped text the Rust library matches against.
    if (byte_level_unmap(by_id_[id], &raw)) byte_vocab_.insert(raw, static_cast<int32_t>(id));
  }
  lookup_ = &byte_vocab_;
  byte_mode_ = true;
  cache_.clear();
  cache_ids_.clear();
  return true;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const int32_t id = lookup(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (const uint64_t* hit = cache_.find(piece)) {
    const int32_t* ids = cache_ids_.data() + (*hit >> 16);
    out.insert(out.end(), ids, ids + (*hit & 0xFFFF));
    return;
  }
  const size_t start = out.size();
  merge_word(piece, out);
  const size_t n = out.size() - start;
  if (piece.size() < kCacheMaxPiece && n < 0xFFFF) {
    if (cache_.size() >= kCacheMaxEntries) {
      cache_.clear();
      cache_ids_.clear();
    }
    cache_.insert(piece, (uint64_t(cache_ids_.size()) << 16) | n);
    cache_ids_.insert(cache_ids_.end(), out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
  }
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  symbols_.clear();
  auto add = [&](int32_t id, size_t len) {
    const int32_t idx = static_cast<int32_t>(symbols_.size());
    if (idx > 0) symbols_.back().next = idx;
    symbols_.push_back(Symbol{id, idx - 1, -1, static_cast<uint32_t>(len)});
  };
  int32_t unk_id = -1;
  size_t unk_len = 0;  // pending unknown run (fuse_unk)
  for (size_t i = 0; i < w.size();) {
    const size_t len = byte_mode_ ? 1 : std::min(utf8_seq_len(static_cast<unsigned char>(w[i])), w.size() - i);
    const bool last = i + len == w.size();
    std::string_view s = w.substr(i, len);
    if ((!prefix_.empty() && i > 0) || (!suffix_.empty() && last)) {
      unit_.clear();
      if (i > 0) unit_ += prefix_;
      unit_.append(s);
      if (last) unit_ += suffix_;
      s = unit_;
    }
    const int32_t id = lookup(s);
    i += len;
    if (id >= 0) {
      if (unk_len) add(unk_id, unk_len), unk_len = 0;
      add(id, len);
      continue;
    }
    if (byte_fallback_) {
      // The Rust library falls back on the bytes of the unit as its vocabulary spells it.
      const std::string mapped = byte_mode_ ? byte_level_char(static_cast<unsigned char>(s[0])) : std::string(s);
      bool all = true;
      for (unsigned char b : mapped) all &= byte_fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : mapped) add(byte_fallback_ids_[b], 1);
        continue;
      }
    }
    if (!has_unk_) continue;  // no unk_token: the character is dropped, as in the Rust library
    const int32_t* uid = vocab_.find(unk_token_);
    QS_CHECK(uid, where_ << ".unk_token: \"" << unk_token_ << "\" is not in model.vocab (needed for a character outside the vocabulary)");
    if (unk_len && fuse_unk_) {
      unk_len += len;
    } else {
      if (unk_len) add(unk_id, unk_len);
      unk_id = *uid;
      unk_len = len;
    }
  }
  if (unk_len) add(unk_id, unk_len);

  // Lowest rank first, then leftmost: std heap functions build a max-heap, so "less" means
  // "comes out later".
  auto later = [](const QueueItem& a, const QueueItem& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  queue_.clear();
  for (size_t k = 0; k + 1 < symbols_.size(); ++k)
    if (const MergeEntry* m = find_merge(symbols_[k].id, symbols_[k + 1].id))
      queue_.push_back(QueueItem{m->rank, static_cast<int32_t>(k), m->new_id});
  std::make_heap(queue_.begin(), queue_.end(), later);
  while (!queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end(), later);
    const QueueItem top = queue_.back();
    queue_.pop_back();
    Symbol& cur = symbols_[top.pos];
    if (cur.len == 0 || cur.next < 0) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols_[next_pos];
    const MergeEntry* m = find_merge(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols_[next_pos].len = 0;
    if (right.next >= 0) symbols_[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const MergeEntry* pm = find_merge(symbols_[cur.prev].id, cur.id)) {
        queue_.push_back(QueueItem{pm->rank, cur.prev, pm->new_id});
        std::push_heap(queue_.begin(), queue_.end(), later);
      }
    }
    if (cur.next >= 0) {
      if (const MergeEntry* nm = find_merge(cur.id, symbols_[cur.next].id)) {
        queue_.push_back(QueueItem{nm->rank, top.pos, nm->new_id});
        std::push_heap(queue_.begin(), queue_.end(), later);
      }
    }
  }
  for (const Symbol& s : symbols_)
    if (s.len) out.push_back(s.id);
}

}  // namespace qsweep
