// forward_cuda.h — the CUDA twin of LlamaForward (model/forward_cuda.cc), built only with
// QSWEEP_WITH_CUDA; without it make_cuda_forward throws (never reached: select_device refuses
// --device cuda first).
#pragma once
#include <memory>

#include "model/config.h"

namespace qsweep {

class LlamaForward;

// The forward pass on CUDA device `ordinal` (this process's binding, core/device.h).
std::unique_ptr<LlamaForward> make_cuda_forward(const ModelConfig& cfg, int ordinal);

}  // namespace qsweep
