// task_pool.h — "owner computes, every rank receives": independent tasks dealt to ranks by
// longest-processing-time order (lpt_assign), each result serialised as Bytes and broadcast from
// its owner, so every rank ends with every result. Failures are agreed on before the broadcasts
// (a task that throws on its owner makes every rank throw its message; no rank waits forever).
// Used by the quantization pipeline's per-layer work and by methods' per-block searches (AWQ).
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "dist/comm.h"

namespace qsweep {

// Byte serialisation of task results for the broadcast.
struct Bytes {
  std::vector<char> b;
  size_t pos = 0;
  template <typename T> void put(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  template <typename T> void put_vec(const std::vector<T>& v) {
    put<uint64_t>(v.size());
    const char* p = reinterpret_cast<const char*>(v.data());
    b.insert(b.end(), p, p + v.size() * sizeof(T));
  }
  template <typename T> T get() {
    T v;
    std::memcpy(&v, b.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  template <typename T> std::vector<T> get_vec() {
    const uint64_t n = get<uint64_t>();
    std::vector<T> v(n);
    std::memcpy(v.data(), b.data() + pos, n * sizeof(T));
    pos += n * sizeof(T);
    return v;
  }
};


// Runs tasks[k]() on its LPT owner and broadcasts the bytes; returns every task's bytes in order.
// A task that throws on its owner stops the owner's other tasks; the ranks agree on the failure
// before the broadcasts, so every rank throws the owner's message instead of waiting for bytes.
std::vector<Bytes> run_distributed(const std::vector<double>& cost, const std::function<Bytes(size_t)>& task,
                                   const Comm& comm);

}  // namespace qsweep
