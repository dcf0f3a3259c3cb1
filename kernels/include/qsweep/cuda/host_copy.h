// qsweep/cuda/host_copy.h — the host side of the engines' large host<->device copies
// (kernels/staged_copy.cuh: pageable memory through a pinned double buffer), in plain C++ for the
// tests: the threaded memcpy, and a round trip through the staging with a chosen piece size.
#pragma once

#include <cstddef>

namespace qsweep::cuda {

// memcpy of n bytes split over up to 8 threads (one for less than 4 MiB).
void parallel_memcpy(void* dst, const void* src, std::size_t n);

// src (host, `bytes`) → a device buffer on GPU `ordinal` → dst (host), through one StagedCopy
// with staging buffers of `piece` bytes (copies under piece / 4 go the plain way). Throws
// std::runtime_error on CUDA errors.
void staged_round_trip(int ordinal, const void* src, void* dst, std::size_t bytes, std::size_t piece);

}  // namespace qsweep::cuda
