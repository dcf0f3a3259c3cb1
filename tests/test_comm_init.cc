// test_comm_init.cc — when qsweep initialises MPI: with a launcher's environment, never as a
// singleton (no launcher), and QSWEEP_MPI=on|off overriding either way.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dist/comm.h"

namespace qsweep {
namespace {

struct FakeEnv {
  std::map<std::string, std::string> vars;
  const char* operator()(const char* name) const {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  }
};

TEST(CommInit, NoLauncherMeansNoMpi) {
  EXPECT_FALSE(mpi_wanted(FakeEnv{}));
  EXPECT_FALSE(mpi_wanted(FakeEnv{{{"SLURM_STEP_NUM_TASKS", "1"}, {"SLURM_PROCID", "0"}}}));
  EXPECT_FALSE(mpi_wanted(FakeEnv{{{"OMPI_MCA_btl", "self"}}}));  // MCA settings are not a launcher
}

TEST(CommInit, EachLauncherIsRecognised) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS",
                        "MV2_COMM_WORLD_SIZE"}) {
    EXPECT_TRUE(mpi_wanted(FakeEnv{{{v, "0"}}})) << v;
  }
  EXPECT_TRUE(mpi_wanted(FakeEnv{{{"SLURM_STEP_NUM_TASKS", "4"}}}));
}

TEST(CommInit, UserOverrideWins) {
  EXPECT_TRUE(mpi_wanted(FakeEnv{{{"QSWEEP_MPI", "on"}}}));
  EXPECT_FALSE(mpi_wanted(FakeEnv{{{"QSWEEP_MPI", "off"}, {"OMPI_COMM_WORLD_SIZE", "2"}}}));
  EXPECT_TRUE(mpi_wanted(FakeEnv{{{"QSWEEP_MPI", "auto"}, {"PMIX_RANK", "1"}}}));
}

}  // namespace
}  // namespace qsweep
