// device.h — the one place where "which device" is decided (issue 12's device seam): the user's
// --device choice (auto|cpu|cuda), what it resolves to on this rank, and the rank→GPU binding.
//
// Like the thread count, the compute device is a per-process setting: start_provenance selects
// it once per command (select_device), and every stage's forward pass asks for it through
// make_forward (model/forward.h). A whole run uses one device kind on every rank: `auto` picks
// CUDA only when every rank sees a GPU, so CPU and GPU arithmetic never mix within one result.
// The kind and compute dtype are part of a sweep's identity (inputs.json's "compute"), so a
// resumed sweep never mixes CPU and GPU cells either.
#pragma once
#include <string>

namespace qsweep {

class Comm;

enum class DeviceChoice { Auto, Cpu, Cuda };
enum class DeviceKind { Cpu, Cuda };
// The arithmetic of the model's GEMMs (forward passes and training): fp32 (cuBLAS SGEMM with TF32
// off, the CPU's OpenBLAS), or bf16 on CUDA only (--compute-dtype bf16: tensor-core GEMMs that
// round their fp32 inputs to bf16 and accumulate in fp32; faster, less exact: README). Statistics
// (Gram matrices, activation sums), the quantizers' arithmetic and GPTQ stay fp32/fp64 either way.
// tf32x3 (CUDA only) keeps fp32's accuracy class at tensor-core speed: the forward pass's linear
// and head GEMMs as three TF32 products of operands split into two TF32 parts (qsweep/cuda/
// tf32_split.h; error ≤ ~2⁻²¹ per product against fp32's 2⁻²⁴, README); training stays fp32.
enum class ComputeDtype { Fp32, Bf16, Tf32x3 };

// "auto", "cpu" or "cuda"; anything else throws naming `what` (e.g. "--device") and the choices.
DeviceChoice parse_device_choice(const std::string& s, const std::string& what = "--device");
// "fp32", "bf16" or "tf32x3"; anything else throws naming `what` and the choices.
ComputeDtype parse_compute_dtype(const std::string& s, const std::string& what = "--compute-dtype");
const char* compute_dtype_name(ComputeDtype d);

struct ComputeDevice {
  DeviceKind kind = DeviceKind::Cpu;
  int ordinal = -1;         // the CUDA device this rank is bound to, -1 on the CPU
  std::string description;  // "cpu" or "cuda:0 (NVIDIA H200, 139.8 GiB)"
  ComputeDtype dtype = ComputeDtype::Fp32;
  // The identity of results computed here: "cpu fp32", "cuda fp32", "cuda bf16" or "cuda tf32x3" (device kind and
  // compute dtype; not the GPU model, so a sweep may resume on another node of the same kind),
  // with " flash-attention" after CUDA's bf16 and tf32x3 when the fused attention is on.
  std::string identity() const;
  const char* kind_name() const { return kind == DeviceKind::Cuda ? "cuda" : "cpu"; }
};

// QSWEEP_CUDA_ATTENTION (`value`: the variable's text, nullptr when unset): "flash" opts in to the
// fused attention kernels of CUDA's bf16 and tf32x3 (kernels/flash_attention.cuh), "gemm" or unset
// keeps the GEMM path (the default until the kernels have run on a GPU: README); anything else
// throws naming the variable and its values.
bool flash_attention_requested(const char* value);
// The same for this process's environment.
bool flash_attention_requested();

// The GPU a rank binds to: its node-local rank (MPI_Comm_split_type SHARED) modulo the devices it
// sees, so ranks on a node spread over its GPUs and share them round-robin beyond that.
int gpu_for_local_rank(int local_rank, int visible_devices);

// What `choice` resolves to for a rank that sees `visible_devices` GPUs in a build with or without
// CUDA (`every_rank_has_gpu`: all ranks see at least one). Throws a clear Error for `cuda` without
// CUDA in the build or without a visible GPU. Pure: the testable part of select_device.
DeviceKind resolve_device(DeviceChoice choice, bool built_with_cuda, int visible_devices, bool every_rank_has_gpu);

// Collective over `comm`: resolves the choice on every rank (agreeing on failures: no rank is left
// waiting), binds each rank to its GPU, logs the binding, and makes it this process's device.
// bf16 on a device that resolves to the CPU is an error (the CPU path computes in fp32 only).
const ComputeDevice& select_device(DeviceChoice choice, const Comm& comm, ComputeDtype dtype = ComputeDtype::Fp32);
// This process's device: the CPU until select_device chose another.
const ComputeDevice& current_device();

// Sets this process's device for a scope and restores the previous one (tests comparing twins).
class DeviceScope {
 public:
  explicit DeviceScope(const ComputeDevice& d);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  ComputeDevice previous_;
};

}  // namespace qsweep
