// nccl_comm.cu — qsweep/cuda/nccl_comm.h: the NCCL communicator and the exact 128-bit sum.
#include "qsweep/cuda/nccl_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "check.cuh"
#include "device_alloc.cuh"

namespace qsweep::cuda {

namespace {

__global__ void split_limbs(const unsigned __int128* v, unsigned long long* limbs, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const unsigned __int128 x = v[i];
    for (int k = 0; k < 4; ++k) limbs[4 * i + k] = static_cast<unsigned long long>((x >> (32 * k)) & 0xffffffffULL);
  }
}

// Σ_k limb_k · 2^(32k) mod 2^128: the shifted limbs' sum wraps exactly as the CPU's integer sum.
__global__ void join_limbs(const unsigned long long* limbs, unsigned __int128* v, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    unsigned __int128 x = 0;
    for (int k = 0; k < 4; ++k) x += static_cast<unsigned __int128>(limbs[4 * i + k]) << (32 * k);
    v[i] = x;
  }
}

unsigned grid_for(std::size_t n) { return static_cast<unsigned>(n / 256 + 1 < 65535 ? n / 256 + 1 : 65535); }

}  // namespace

std::vector<char> nccl_unique_id() {
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  std::vector<char> out(sizeof(id.internal));
  std::memcpy(out.data(), id.internal, out.size());
  return out;
}

// Integers reduced per NCCL call: the limbs buffer (allocated with the communicator, so that no
// allocation can fail between the ranks' agreement and the collective) is 32 bytes per integer.
constexpr std::size_t kSlice = std::size_t(1) << 22;  // 128 MB of limbs

struct NcclComm::Impl {
  int ordinal = 0;
  double timeout_s = 300;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  unsigned long long* limbs = nullptr;
  bool broken = false;
  ~Impl() {
    if (limbs) cudaFree(limbs);
    if (comm) {
      if (broken)
        ncclCommAbort(comm);
      else
        ncclCommDestroy(comm);
    }
    if (stream) cudaStreamDestroy(stream);
  }
  // Aborts the communicator (peers blocked in it see an error instead of waiting) and throws.
  [[noreturn]] void fail(const std::string& what) {
    broken = true;
    ncclCommAbort(comm);
    comm = nullptr;
    throw std::runtime_error(what);
  }
  // Polls until NCCL's asynchronous state leaves ncclInProgress and, when `stream_too`, the stream
  // has finished; an NCCL error or the deadline aborts.
  void wait(const char* what, bool stream_too) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int spin = 0;; ++spin) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t r = ncclCommGetAsyncError(comm, &state);
      if (r != ncclSuccess) fail(std::string(what) + ": ncclCommGetAsyncError: " + ncclGetErrorString(r));
      if (state != ncclSuccess && state != ncclInProgress)
        fail(std::string(what) + ": " + ncclGetErrorString(state) + " (the communicator was aborted)");
      if (state == ncclSuccess) {
        if (!stream_too) return;
        const cudaError_t q = cudaStreamQuery(stream);
        if (q == cudaSuccess) return;
        if (q != cudaErrorNotReady) {
          cudaGetLastError();
          fail(std::string(what) + ": " + cudaGetErrorName(q) + ": " + cudaGetErrorString(q));
        }
      }
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (waited > timeout_s)
        fail(std::string(what) + ": not complete after " + std::to_string(static_cast<long>(timeout_s)) +
             " s (a peer rank stopped responding; QSWEEP_NCCL_TIMEOUT_S sets the limit): the communicator was aborted");
      if (spin > 1000) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
};

NcclComm::NcclComm(int ordinal, int nranks, int rank, const std::vector<char>& id, double timeout_s) : impl_(new Impl) {
  Impl& m = *impl_;
  m.ordinal = ordinal;
  m.timeout_s = timeout_s;
  ncclUniqueId uid;
  if (id.size() != sizeof(uid.internal)) throw std::invalid_argument("NcclComm: unique id of the wrong size");
  std::memcpy(uid.internal, id.data(), id.size());
  CUDA_CHECK(cudaSetDevice(ordinal));
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  m.limbs = static_cast<unsigned long long*>(
      detail::device_alloc(4 * kSlice * sizeof(unsigned long long), "the exact reduction's limbs"));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every call returns at once; wait() polls, so a stuck peer cannot hang us
  const ncclResult_t r = ncclCommInitRankConfig(&m.comm, nranks, uid, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    if (m.comm) m.fail(std::string("ncclCommInitRankConfig: ") + ncclGetErrorString(r));
    throw std::runtime_error(std::string("ncclCommInitRankConfig: ") + ncclGetErrorString(r));
  }
  m.wait("ncclCommInitRankConfig", false);
}

NcclComm::~NcclComm() = default;

bool NcclComm::broken() const { return impl_->broken; }

void NcclComm::allreduce_sum_i128(void* device_data, std::size_t n, const Agree& agree) {
  Impl& m = *impl_;
  if (m.broken) throw std::logic_error("NcclComm: the communicator was aborted");
  auto* v = static_cast<unsigned __int128*>(device_data);
  for (std::size_t i0 = 0; i0 < n; i0 += kSlice) {
    const std::size_t k = n - i0 < kSlice ? n - i0 : kSlice;
    std::string error;
    try {  // everything that can fail before the collective, agreed before any rank enters it
      CUDA_CHECK(cudaSetDevice(m.ordinal));
      split_limbs<<<grid_for(k), 256, 0, m.stream>>>(v + i0, m.limbs, k);
      CUDA_CHECK_LAUNCH();
      CUDA_CHECK(cudaStreamSynchronize(m.stream));
    } catch (const std::exception& e) {
      error = e.what();
    }
    agree(error);
    const ncclResult_t r = ncclAllReduce(m.limbs, m.limbs, 4 * k, ncclUint64, ncclSum, m.comm, m.stream);
    if (r != ncclSuccess && r != ncclInProgress) m.fail(std::string("ncclAllReduce: ") + ncclGetErrorString(r));
    m.wait("ncclAllReduce", true);
    join_limbs<<<grid_for(k), 256, 0, m.stream>>>(m.limbs, v + i0, k);
    CUDA_CHECK_LAUNCH();
  }
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

}  // namespace qsweep::cuda
