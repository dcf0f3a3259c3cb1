// allocate.h — mixed-precision allocation as a multiple-choice knapsack, solved exactly: choose one
// candidate (bits, group size) per layer so that the total size stays within a budget and the
// total score (the sum of per-layer sensitivities: scores are assumed additive) is smallest.
//
// Algorithm: candidates dominated in (size, score) are dropped; each layer's remaining candidates
// lie on a staircase whose lower convex hull gives the LP relaxation (Dyer–Zemel: start every
// layer at its smallest candidate, then take hull upgrades in order of score saved per bit, the
// last one fractionally). A depth-first branch and bound over the layers (the layers with the
// widest score range first) uses that relaxation as its lower bound and the rounded-down LP
// solution as the first incumbent. Sizes are integers (bits), so feasibility is exact; scores
// are compared with a relative tolerance of 1e-12. A node limit turns a run that cannot prove
// optimality in time into an error, never into a silently suboptimal plan.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

struct AllocCandidate {
  int bits = 0, group_size = 0;
  int64_t size_bits = 0;  // what this choice stores for the layer
  double score = 0;       // its sensitivity (lower is better)
};

struct AllocLayer {
  std::string name;
  std::vector<AllocCandidate> candidates;
};

struct AllocResult {
  std::vector<int> choice;  // per layer: index into its candidates
  int64_t size_bits = 0;
  double score = 0;
  int64_t nodes = 0;        // branch-and-bound nodes visited
};

// Throws qsweep::Error when even the smallest choice of every layer exceeds the budget, when a
// layer has no candidate, or when optimality is not proven within max_nodes.
AllocResult allocate_exact(const std::vector<AllocLayer>& layers, int64_t budget_bits, int64_t max_nodes = 50'000'000);

// Exhaustive search (tests only): every combination; feasible optimum or choice empty.
AllocResult allocate_brute_force(const std::vector<AllocLayer>& layers, int64_t budget_bits);

}  // namespace qsweep
