// hellaswag_order.cc — the order in which llama-perplexity --hellaswag visits the tasks of a file
// (it draws them at random: std::mt19937 seeded with 1, std::uniform_int_distribution<size_t>
// over the tasks left, each drawn task erased), so that its running accuracy can be turned back
// into a per-task result. Compiled by bench/hellaswag_vs_llamacpp.sh with the same C++ library as
// a llama.cpp built here. Prints, for each visit in order, the 0-based index of the task in the file.
// Usage: hellaswag_order N_TASKS
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const size_t n = std::strtoul(argv[1], nullptr, 10);
  std::vector<size_t> left(n);
  for (size_t i = 0; i < n; ++i) left[i] = i;
  std::mt19937 rng(1);
  for (size_t i = 0; i < n; ++i) {
    std::uniform_int_distribution<size_t> dist(0, left.size() - 1);
    const size_t idx = dist(rng);
    std::printf("%zu\n", left[idx]);
    left.erase(left.begin() + idx);
  }
  return 0;
}
