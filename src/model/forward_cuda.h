// forward_cuda.h — the CUDA twin of LlamaForward (model/forward_cuda.cc), built only with
// QSWEEP_WITH_CUDA; without it make_cuda_forward throws (never reached: select_device refuses
// --device cuda first).
#pragma once
#include <functional>
#include <memory>

#include "model/config.h"
#ifdef QSWEEP_WITH_CUDA
#include "qsweep/cuda/block_forward.h"
#endif

namespace qsweep {

class LlamaForward;

// The forward pass on CUDA device `ordinal` (this process's binding, core/device.h).
std::unique_ptr<LlamaForward> make_cuda_forward(const ModelConfig& cfg, int ordinal);

#ifdef QSWEEP_WITH_CUDA
// A block's shape as the CUDA engines take it (BlockForward, BlockGrad).
cuda::BlockDims cuda_block_dims(const ModelConfig& cfg);
// Runs f; an engine's std::exception (CUDA, cuBLAS, out of memory) becomes an Error "cuda <what>: ...".
void cuda_guarded(const char* what, const std::function<void()>& f);
#endif

}  // namespace qsweep
