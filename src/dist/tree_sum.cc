// tree_sum.cc — the binary-counter stack of one rank and the leftward cross-rank merge.
#include "dist/tree_sum.h"

#include "core/error.h"

namespace qsweep {

namespace {

// A left child whose right sibling covers no leaf is its parent (V(parent) = V(left)).
TreeNode promote(TreeNode t, int64_t n) {
  while (t.index % 2 == 0 && ((t.index + 1) << t.level) >= n && (int64_t(1) << t.level) < n) {
    t.index /= 2;
    ++t.level;
  }
  return t;
}

bool siblings(const TreeNode& left, const TreeNode& right) {
  return left.level == right.level && left.index % 2 == 0 && right.index == left.index + 1;
}

void add_into(std::vector<double>& a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

// Pushes `p` onto a stack of pieces (all owned by one rank), merging siblings as far as possible.
template <typename Merge>
void push_piece(std::vector<TreeSum::Piece>& stack, TreeSum::Piece p, int64_t n, Merge merge) {
  p.node = promote(p.node, n);
  while (!stack.empty() && siblings(stack.back().node, p.node)) {
    TreeSum::Piece left = std::move(stack.back());
    stack.pop_back();
    merge(left.v, p.v);
    p.v = std::move(left.v);
    p.node = promote(TreeNode{p.node.level + 1, p.node.index / 2}, n);
  }
  stack.push_back(std::move(p));
}

}  // namespace

std::vector<TreeNode> tree_pieces(int64_t n, int64_t first, int64_t last) {
  std::vector<TreeSum::Piece> stack;
  for (int64_t i = first; i < last; ++i)
    push_piece(stack, TreeSum::Piece{TreeNode{0, i}, 0, {}}, n, [](std::vector<double>&, std::vector<double>&) {});
  std::vector<TreeNode> out;
  for (const auto& p : stack) out.push_back(p.node);
  return out;
}

TreeSum::TreeSum(int64_t n_leaves, int64_t first, int64_t last, size_t len)
    : n_(n_leaves), first_(first), next_(first), len_(len) {
  QS_ASSERT(0 <= first && first <= last && last <= n_leaves, "tree_sum: leaf range");
  (void)last;
}

void TreeSum::add(std::vector<double> leaf) {
  QS_ASSERT(leaf.size() == len_, "tree_sum: leaf length");
  QS_ASSERT(next_ < n_, "tree_sum: more leaves than declared");
  push_piece(stack_, Piece{TreeNode{0, next_++}, 0, std::move(leaf)}, n_,
             [](std::vector<double>& left, std::vector<double>& right) { add_into(left, right); });
  max_held_ = std::max(max_held_, stack_.size());
}

TreeSum::Piece TreeSum::merge_all(std::vector<Piece> list, int64_t n, size_t len,
                                  const std::function<void(Piece& left, Piece& right)>& move) {
  if (list.empty()) return Piece{TreeNode{0, 0}, 0, std::vector<double>(len, 0.0)};
  while (list.size() > 1) {
    std::vector<Piece> next;
    bool merged = false;
    for (size_t i = 0; i < list.size(); ++i) {
      if (i + 1 < list.size() && siblings(list[i].node, list[i + 1].node)) {
        Piece& l = list[i];
        Piece& r = list[i + 1];
        if (l.owner != r.owner) move(l, r);
        if (!l.v.empty()) add_into(l.v, r.v);
        r.v.clear();
        r.v.shrink_to_fit();
        l.node = promote(TreeNode{l.node.level + 1, l.node.index / 2}, n);
        next.push_back(std::move(l));
        ++i;
        merged = true;
      } else {
        next.push_back(std::move(list[i]));
      }
    }
    QS_ASSERT(merged, "tree_sum: no sibling pair among " << list.size() << " pieces");
    list = std::move(next);
  }
  return std::move(list[0]);
}

std::vector<TreeSum::Piece> TreeSum::release(int owner) {
  std::vector<Piece> out = std::move(stack_);
  stack_.clear();
  for (auto& p : out) p.owner = owner;
  return out;
}

std::vector<double> TreeSum::finish(const Comm& comm) {
  QS_ASSERT(comm.size() > 1 || next_ == n_, "tree_sum: leaves missing");
  // Every rank's pieces, in rank (= leaf) order, from the ranges alone.
  std::vector<Piece> all;
  for (int r = 0; r < comm.size(); ++r) {
    int64_t a, b;
    block_range(n_, r, comm.size(), &a, &b);
    if (r == comm.rank()) {
      QS_ASSERT(a == first_ && b == next_, "tree_sum: rank " << r << " added leaves [" << first_ << ", " << next_
                                                           << ") of its range [" << a << ", " << b << ")");
      for (auto& p : release(r)) all.push_back(std::move(p));
    } else {
      for (const TreeNode& t : tree_pieces(n_, a, b)) all.push_back(Piece{t, r, {}});
    }
  }
  const int me = comm.rank();
  Piece root = merge_all(std::move(all), n_, len_, [&](Piece& l, Piece& r) {
    if (r.owner == me) {
      comm.send(r.v.data(), r.v.size() * sizeof(double), l.owner, 78);
    } else if (l.owner == me) {
      r.v.resize(len_);
      comm.recv(r.v.data(), len_ * sizeof(double), r.owner, 78);
    }
    r.owner = l.owner;
  });
  // No deadlock with blocking send/recv: every rank walks the same sequence of merges, so the
  // earliest unfinished merge always has both its ranks waiting on each other's matching call.
  std::vector<double> total = root.v;
  total.resize(len_);
  comm.bcast(total.data(), len_ * sizeof(double), root.owner);
  return total;
}

}  // namespace qsweep
