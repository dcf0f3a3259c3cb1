// flat_string_map.h — an open-addressing hash map from byte strings to a small value, looked up
// by std::string_view without building a std::string. The tokenizers' hot loops (the BPE
// vocabulary and the per-pre-token cache) do millions of lookups of short keys; a
// std::unordered_map<std::string, V> would allocate a key for each and chase a pointer per node.
// Keys live in one arena; the table holds (hash, offset, length, value) and is never shrunk.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace qsweep {

inline uint64_t hash_bytes(std::string_view s) {
  // 8 bytes at a time, multiply-xorshift mixing; good enough for a power-of-two table.
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
  }
  h ^= h >> 29;
  h *= 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 32);
}

template <typename V>
class FlatStringMap {
 public:
  FlatStringMap() { rehash(16); }

  size_t size() const { return count_; }

  /// The value of key, or nullptr.
  const V* find(std::string_view key) const {
    const uint64_t h = hash_bytes(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.len == kEmpty) return nullptr;
      if (s.hash == h && s.len == key.size() && std::memcmp(keys_.data() + s.off, key.data(), key.size()) == 0)
        return &s.value;
    }
  }

  /// Inserts or overwrites; returns true when the key was new.
  bool insert(std::string_view key, const V& value) {
    if ((count_ + 1) * 4 > slots_.size() * 3) rehash(slots_.size() * 2);
    const uint64_t h = hash_bytes(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.len == kEmpty) {
        s.hash = h;
        s.off = keys_.size();
        s.len = static_cast<uint32_t>(key.size());
        s.value = value;
        keys_.append(key.data(), key.size());
        ++count_;
        return true;
      }
      if (s.hash == h && s.len == key.size() && std::memcmp(keys_.data() + s.off, key.data(), key.size()) == 0) {
        s.value = value;
        return false;
      }
    }
  }

  void clear() {
    keys_.clear();
    count_ = 0;
    rehash(16);
  }

  size_t key_bytes() const { return keys_.size(); }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t hash = 0;
    uint64_t off = 0;
    uint32_t len = kEmpty;
    V value{};
  };

  void rehash(size_t n) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (const Slot& s : old) {
      if (s.len == kEmpty) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].len != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::string keys_;
  size_t mask_ = 0, count_ = 0;
};

}  // namespace qsweep
