// block_prefetch.cc — BlockPrefetch: one load in flight on a std::async thread.
#include "eval/block_prefetch.h"

#include <utility>

namespace qsweep {

BlockPrefetch::BlockPrefetch(const LlamaWeights& model, bool on) : model_(model), on_(on) {}

BlockPrefetch::~BlockPrefetch() {
  if (next_.valid()) next_.wait();
}

std::unique_ptr<BlockWeights> BlockPrefetch::take(int l, std::unique_ptr<BlockWeights> done) {
  if (!on_) return model_.load_block(l, std::move(done));
  std::unique_ptr<BlockWeights> cur;
  if (next_.valid()) {
    std::future<std::unique_ptr<BlockWeights>> f = std::move(next_);
    const int fl = next_l_;
    next_l_ = -1;
    if (fl == l) {
      cur = f.get();  // rethrows the load's error
    } else {
      try {  // another block than asked for: only its storage is reused
        spare_ = f.get();
      } catch (...) {
      }
    }
  }
  if (!cur)
    cur = model_.load_block(l, done ? std::move(done) : std::move(spare_));
  else if (done && !spare_)
    spare_ = std::move(done);  // block l-1's storage, for block l+1
  if (l + 1 < model_.config().num_hidden_layers) {
    const LlamaWeights* m = &model_;
    next_ = std::async(std::launch::async,
                       [m, l, r = std::move(spare_)]() mutable { return m->load_block(l + 1, std::move(r)); });
    next_l_ = l + 1;
  }
  return cur;
}

}  // namespace qsweep
