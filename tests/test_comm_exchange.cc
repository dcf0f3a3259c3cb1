// test_comm_exchange.cc — Comm::alltoallv on the single-rank communicator (what every stage sees
// without a launcher): each part comes back as sent, for doubles and floats, and a wrong number
// of parts is an error. The MPI path (64-bit counts, pieces, any rank count) runs in
// tests/e2e/blockap.sh, where Block-AP's gradient slices travel through it on 2 and 3 ranks.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "dist/comm.h"

namespace qsweep {
namespace {

TEST(CommExchange, OneRankGetsItsOwnPartBack) {
  const Comm one = Comm::local();
  const std::vector<std::vector<double>> d = one.alltoallv(std::vector<std::vector<double>>{{1.5, -2.0, 3.25}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], (std::vector<double>{1.5, -2.0, 3.25}));
  const std::vector<std::vector<float>> f = one.alltoallv(std::vector<std::vector<float>>{{}});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(f[0].empty());
}

TEST(CommExchange, PartsMustMatchTheRanks) {
  const Comm one = Comm::local();
  EXPECT_THROW(one.alltoallv(std::vector<std::vector<float>>(2)), Error);
  EXPECT_THROW(one.alltoallv(std::vector<std::vector<double>>{}), Error);
}

}  // namespace
}  // namespace qsweep
