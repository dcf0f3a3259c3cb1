// device.cc — --device parsing, resolution, the rank→GPU binding and the process's device.
#include "core/device.h"

#include <cstdlib>
#include <cstring>

#include "core/backend.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/comm.h"

#ifdef QSWEEP_WITH_CUDA
#include "qsweep/cuda/backend.h"
#endif

namespace qsweep {

namespace {
ComputeDevice& process_device() {
  static ComputeDevice d{DeviceKind::Cpu, -1, "cpu"};
  return d;
}
}  // namespace

DeviceChoice parse_device_choice(const std::string& s, const std::string& what) {
  if (s == "auto") return DeviceChoice::Auto;
  if (s == "cpu") return DeviceChoice::Cpu;
  if (s == "cuda") return DeviceChoice::Cuda;
  QS_THROW(what << " " << s << ": expected auto (CUDA when the build has it and every rank sees a GPU), cpu or cuda");
}

ComputeDtype parse_compute_dtype(const std::string& s, const std::string& what) {
  if (s == "fp32") return ComputeDtype::Fp32;
  if (s == "bf16") return ComputeDtype::Bf16;
  if (s == "tf32x3") return ComputeDtype::Tf32x3;
  QS_THROW(what << " " << s << ": expected fp32 (exact fp32 GEMMs, the default), bf16 (tensor-core GEMMs on CUDA, "
                              "fp32 accumulation) or tf32x3 (fp32 emulated with three TF32 tensor-core products, "
                              "CUDA only)");
}

const char* compute_dtype_name(ComputeDtype d) {
  switch (d) {
    case ComputeDtype::Bf16: return "bf16";
    case ComputeDtype::Tf32x3: return "tf32x3";
    case ComputeDtype::Fp32: break;
  }
  return "fp32";
}

std::string ComputeDevice::identity() const {
  std::string id = std::string(kind_name()) + " " + compute_dtype_name(dtype);
  if (kind == DeviceKind::Cuda && dtype != ComputeDtype::Fp32 && flash_attention_requested()) id += " flash-attention";
  return id;
}

bool flash_attention_requested(const char* value) {
  if (!value || !*value || std::strcmp(value, "gemm") == 0) return false;
  if (std::strcmp(value, "flash") == 0) return true;
  QS_THROW("environment variable QSWEEP_CUDA_ATTENTION='" << value
                                                           << "': expected 'flash' (the fused attention kernels of "
                                                              "--compute-dtype bf16 and tf32x3) or 'gemm' (the default)");
}

bool flash_attention_requested() { return flash_attention_requested(std::getenv("QSWEEP_CUDA_ATTENTION")); }

int gpu_for_local_rank(int local_rank, int visible_devices) {
  QS_ASSERT(visible_devices > 0 && local_rank >= 0, "gpu_for_local_rank(" << local_rank << ", " << visible_devices << ")");
  return local_rank % visible_devices;
}

DeviceKind resolve_device(DeviceChoice choice, bool built_with_cuda, int visible_devices, bool every_rank_has_gpu) {
  switch (choice) {
    case DeviceChoice::Cpu: return DeviceKind::Cpu;
    case DeviceChoice::Auto: return built_with_cuda && every_rank_has_gpu ? DeviceKind::Cuda : DeviceKind::Cpu;
    case DeviceChoice::Cuda:
      QS_CHECK(built_with_cuda, "--device cuda: this qsweep was built without CUDA (rebuild with "
                                "cmake -DQSWEEP_WITH_CUDA=ON, or use --device cpu)");
      QS_CHECK(visible_devices > 0, "--device cuda: this rank sees no CUDA device (" << backend_summary()
                                        << "); check CUDA_VISIBLE_DEVICES and the job's GPU request, or use --device cpu");
      return DeviceKind::Cuda;
  }
  return DeviceKind::Cpu;
}

const ComputeDevice& select_device(DeviceChoice choice, const Comm& comm, ComputeDtype dtype) {
  const int visible = cuda_device_count();
  // Every rank must resolve `auto` alike: CUDA only when no rank lacks a GPU.
  const double lacking = comm.allreduce_max(visible > 0 ? 0.0 : 1.0);
  ComputeDevice d;
  std::string error;
  try {
    d.kind = resolve_device(choice, built_with_cuda(), visible, lacking == 0.0);
    if (d.kind == DeviceKind::Cuda) {
      d.ordinal = gpu_for_local_rank(comm.local_rank(), visible);
#ifdef QSWEEP_WITH_CUDA
      cuda::bind_device(d.ordinal);
      d.description = "cuda:" + std::to_string(d.ordinal) + " (" + cuda::device_name(d.ordinal) + ")";
#endif
    } else {
      d.description = "cpu";
    }
    QS_CHECK(dtype == ComputeDtype::Fp32 || d.kind == DeviceKind::Cuda,
             "--compute-dtype " << compute_dtype_name(dtype)
                                 << " runs on CUDA only, and this run computes on the CPU (in fp32): use --device cuda "
                                    "on a GPU, or --compute-dtype fp32");
    d.dtype = dtype;
  } catch (const std::exception& e) {
    error = e.what();
  }
  comm.agree_or_throw(error);
  if (choice == DeviceChoice::Auto && built_with_cuda() && d.kind == DeviceKind::Cpu && visible > 0)
    log_warn("--device auto: another rank sees no GPU, so every rank computes on the CPU");
  if (d.kind == DeviceKind::Cuda)
    log_info("device: rank %d (node-local rank %d of %d) bound to %s, %d visible, %s", comm.rank(), comm.local_rank(),
             comm.local_size(), d.description.c_str(), visible,
             d.dtype == ComputeDtype::Bf16     ? "bf16 GEMMs (fp32 accumulation)"
             : d.dtype == ComputeDtype::Tf32x3 ? "fp32 emulated with three TF32 products (tf32x3)"
                                               : "fp32 compute (TF32 off)");
  process_device() = d;
  return process_device();
}

const ComputeDevice& current_device() { return process_device(); }

DeviceScope::DeviceScope(const ComputeDevice& d) : previous_(process_device()) {
#ifdef QSWEEP_WITH_CUDA
  if (d.kind == DeviceKind::Cuda) cuda::bind_device(d.ordinal);
#endif
  process_device() = d;
}

DeviceScope::~DeviceScope() { process_device() = previous_; }

}  // namespace qsweep
