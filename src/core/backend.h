// backend.h — which compute backends this build has and what the machine offers. A CUDA build
// still runs everywhere: any error from cudaGetDeviceCount (35, "driver insufficient", on a
// machine without a GPU driver) counts as "no GPU" and the CPU path runs.
#pragma once
#include <string>

namespace qsweep {

bool built_with_cuda();
int cuda_device_count();  // 0 without CUDA support or without a usable device
// One line for logs: e.g. "cpu (OpenBLAS 0.3.21, 2 threads); cuda: 0 devices (...)".
std::string backend_summary();

}  // namespace qsweep
