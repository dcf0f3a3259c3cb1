// test_reliability.cc — the small pieces of issue 10's guards: SHA-256 against the FIPS 180-4 /
// NIST vectors, the non-finite scan, and the single-rank failure agreement.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"
#include "dist/comm.h"
#include "eval/non_finite.h"

using namespace qsweep;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsWhole) {
  std::string s;
  for (int i = 0; i < 300; ++i) s += static_cast<char>(i * 7);
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 128, 299}) {
    Sha256 h;
    h.update(s.data(), split);
    h.update(s.data() + split, s.size() - split);
    EXPECT_EQ(h.hex_digest(), sha256_hex(s)) << split;
  }
}

TEST(NonFinite, FindsFirst) {
  std::vector<float> x(1000, 1.0f);
  EXPECT_EQ(find_non_finite(x.data(), 1000), -1);
  x[700] = std::numeric_limits<float>::infinity();
  x[900] = std::nanf("");
  EXPECT_EQ(find_non_finite(x.data(), 1000), 700);
  std::vector<double> d = {1, 2, std::nan("")};
  EXPECT_FALSE(all_finite(d));
  d.pop_back();
  EXPECT_TRUE(all_finite(d));
}

TEST(AgreeOrThrow, SingleRank) {
  const Comm c = Comm::local();
  EXPECT_NO_THROW(c.agree_or_throw(""));
  try {
    c.agree_or_throw("block 3, layer x: bad");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "block 3, layer x: bad");
  }
}

// run_agreed: a rank's exception (any std::exception, e.g. a CUDA engine's runtime_error) becomes
// the agreed Error; work that succeeds runs once and throws nothing.
TEST(AgreeOrThrow, RunAgreedTurnsAnExceptionIntoTheAgreedError) {
  const Comm c = Comm::local();
  int ran = 0;
  EXPECT_NO_THROW(run_agreed(c, [&] { ++ran; }));
  EXPECT_EQ(ran, 1);
  try {
    run_agreed(c, [] { throw std::runtime_error("cuda block pass: out of memory"); });
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cuda block pass: out of memory");
  }
}
