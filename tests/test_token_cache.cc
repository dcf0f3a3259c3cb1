// test_token_cache.cc — the token cache's key and entries: any changed input byte changes the key,
// an entry is returned only for exactly its key and only when complete.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/token_cache.h"

namespace qsweep {
namespace {

// A fresh folder, removed with the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/qsweep_tc_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(TokenCache, KeyDependsOnEveryInput) {
  TempDir t;
  const std::string d = t.path;
  const std::string tok = d + "/tokenizer.json";
  std::ofstream(tok) << "{\"a\": 1}";
  const std::string k = token_cache_key("hello world", {tok}, 100);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, token_cache_key("hello world", {tok}, 100));
  EXPECT_NE(k, token_cache_key("hello world!", {tok}, 100));
  EXPECT_NE(k, token_cache_key("hello world", {tok}, 101));
  EXPECT_NE(k, token_cache_key("hello world", {}, 100));
  std::ofstream(tok) << "{\"a\": 2}";  // same name and size, other bytes
  EXPECT_NE(k, token_cache_key("hello world", {tok}, 100));
}

TEST(TokenCache, EntriesRoundTripAndRejectOthers) {
  TempDir t;
  const std::string d = t.path + "/nested/dir";
  const std::string k1 = token_cache_key("a", {}, 10), k2 = token_cache_key("b", {}, 10);
  EXPECT_FALSE(token_cache_get(d, k1));
  const std::vector<int32_t> ids{1, 2, 3, 9, 0};
  ASSERT_TRUE(token_cache_put(d, k1, ids));
  auto got = token_cache_get(d, k1);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ids);
  EXPECT_FALSE(token_cache_get(d, k2));
  ASSERT_TRUE(token_cache_put(d, k2, {}));  // an empty list is a valid entry
  ASSERT_TRUE(token_cache_get(d, k2));
  EXPECT_TRUE(token_cache_get(d, k2)->empty());
  EXPECT_FALSE(token_cache_get("", k1));
}

TEST(TokenCache, TruncatedOrForeignEntriesAreMisses) {
  TempDir t;
  const std::string d = t.path;
  const std::string k = token_cache_key("text", {}, 10);
  ASSERT_TRUE(token_cache_put(d, k, {5, 6, 7}));
  const std::string path = d + "/" + k.substr(0, 32) + ".tok";
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 1);
  EXPECT_FALSE(token_cache_get(d, k));
  std::string other = bytes;
  other[20] ^= 1;  // the stored key (a prefix collision of the file name)
  std::ofstream(path, std::ios::binary) << other;
  EXPECT_FALSE(token_cache_get(d, k));
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_TRUE(token_cache_get(d, k));
}

}  // namespace
}  // namespace qsweep
