// block_prefetch.h — loads the next decoder block on a host thread while the current one runs.
//
// A pass over the blocks alternates load_block (read the checkpoint, convert to fp32: host work)
// and the block's forward. On a GPU the host is idle during the forward, so BlockPrefetch loads
// block l+1 into the storage of block l-1 while block l runs: two blocks' host arrays at once
// instead of one, the same bits (each block is the same load_block call, only earlier). On the
// CPU the forward already uses every core, so the default (EvalOptions::prefetch = auto) keeps
// loading in line there; tests force it on to check that the results do not change.
#pragma once

#include <future>
#include <memory>

#include "model/llama_weights.h"

namespace qsweep {

class BlockPrefetch {
 public:
  // on: load ahead; off: take() is model.load_block.
  BlockPrefetch(const LlamaWeights& model, bool on);
  ~BlockPrefetch();  // waits for a load still running (its result or error is dropped)
  BlockPrefetch(const BlockPrefetch&) = delete;
  BlockPrefetch& operator=(const BlockPrefetch&) = delete;

  // Block l: the load started by the previous call when that was l, else loaded now. `done` is
  // the caller's previous block, finished with: its storage is reused. With prefetch on, starts
  // loading block l+1 (when there is one) before returning. A load's error is thrown here.
  std::unique_ptr<BlockWeights> take(int l, std::unique_ptr<BlockWeights> done);

 private:
  const LlamaWeights& model_;
  const bool on_;
  std::future<std::unique_ptr<BlockWeights>> next_;
  int next_l_ = -1;
  std::unique_ptr<BlockWeights> spare_;  // a finished block's storage, for the next load
};

}  // namespace qsweep
