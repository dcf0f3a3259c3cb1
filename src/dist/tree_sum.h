// tree_sum.h — Σ of n leaf vectors (one per calibration chunk) over a fixed pairwise tree of leaf
// indices, so that the result is bit-identical for any partition of the leaves over ranks while
// each rank holds only O(log n) partial sums.
//
// The tree: node (level l, index k) covers leaves [k·2^l, (k+1)·2^l) ∩ [0, n). A leaf is a node of
// level 0; an inner node is left + right child, or just its left child when the right child covers
// no leaf (past n). The root is the node of level ⌈log2 n⌉. A rank owning the contiguous leaves
// [first, last) adds them in order; each new piece merges with the piece on top of its stack
// whenever the two are siblings (a binary counter), so the stack never holds more than
// ⌈log2 n⌉ + 1 pieces. finish() then merges the ranks' pieces along the same tree (rounds of
// sibling merges, the right piece's owner sending to the left piece's owner, always leftward) and
// broadcasts the root from its owner. Every inner node is computed exactly once, from the same
// two children, whatever the rank count.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "dist/comm.h"

namespace qsweep {

struct TreeNode {
  int level = 0;
  int64_t index = 0;
  bool operator==(const TreeNode& o) const { return level == o.level && index == o.index; }
};

// The nodes a rank that added leaves [first, last) of n holds afterwards (descriptors only).
std::vector<TreeNode> tree_pieces(int64_t n, int64_t first, int64_t last);

class TreeSum {
 public:
  struct Piece {
    TreeNode node;
    int owner = 0;
    std::vector<double> v;  // empty on ranks that do not own it
  };
  TreeSum(int64_t n_leaves, int64_t first, int64_t last, size_t len);
  // Adds leaf first + (number added so far); `leaf` must have length len.
  void add(std::vector<double> leaf);
  size_t held() const { return stack_.size(); }
  size_t max_held() const { return max_held_; }
  // Hands over the pieces held (marked as `owner`'s), leaving none; for finish() and tests.
  std::vector<Piece> release(int owner);
  // Collective: the root sum, on every rank. Every rank must have added all its leaves.
  std::vector<double> finish(const Comm& comm);

  // The cross-rank merge over `pieces` (every rank's, in leaf order, data where present): rounds of
  // sibling merges until one piece is left. `move(left, right)` is called before each merge whose
  // pieces have different owners, to bring right.v to left.owner (or do nothing on other ranks);
  // the merge itself runs where left.v is non-empty. Returns the root piece. (Exposed for tests.)
  static Piece merge_all(std::vector<Piece> pieces, int64_t n, size_t len,
                         const std::function<void(Piece& left, Piece& right)>& move);

 private:
  int64_t n_, first_, next_;
  size_t len_;
  std::vector<Piece> stack_;
  size_t max_held_ = 0;
};

}  // namespace qsweep
