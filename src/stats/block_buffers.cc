// block_buffers.cc — BlockBuffers: a size-matched pool of a block's large statistics arrays.
#include "stats/block_buffers.h"

#include <utility>

namespace qsweep {

namespace {

template <class T>
std::vector<T> take(std::vector<std::vector<T>>& from, std::size_t n) {
  for (std::size_t i = 0; i < from.size(); ++i)
    if (from[i].size() == n) {
      std::vector<T> v = std::move(from[i]);
      from.erase(from.begin() + static_cast<std::ptrdiff_t>(i));
      return v;
    }
  return std::vector<T>(n);
}

template <class T>
void put(std::vector<std::vector<T>>& to, std::vector<T>&& v, std::size_t max_held) noexcept {
  if (v.empty()) return;
  try {
    if (to.size() >= max_held) to.erase(to.begin());  // the oldest goes
    to.push_back(std::move(v));
  } catch (...) {
    // the array is freed with v
  }
}

}  // namespace

std::vector<double> BlockBuffers::doubles(std::size_t n) { return take(doubles_, n); }

void BlockBuffers::give(std::vector<double>&& v) noexcept { put(doubles_, std::move(v), kMaxHeld); }

}  // namespace qsweep
