// nccl_comm.cu — qsweep/cuda/nccl_comm.h: the NCCL communicator and the exact 128-bit sum.
#include "qsweep/cuda/nccl_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <stdexcept>
#include <string>

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
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  unsigned long long* limbs = nullptr;
  ~Impl() {
    if (limbs) cudaFree(limbs);
    if (comm) ncclCommDestroy(comm);
    if (stream) cudaStreamDestroy(stream);
  }
};

NcclComm::NcclComm(int ordinal, int nranks, int rank, const std::vector<char>& id) : impl_(new Impl) {
  Impl& m = *impl_;
  m.ordinal = ordinal;
  ncclUniqueId uid;
  if (id.size() != sizeof(uid.internal)) throw std::invalid_argument("NcclComm: unique id of the wrong size");
  std::memcpy(uid.internal, id.data(), id.size());
  CUDA_CHECK(cudaSetDevice(ordinal));
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  m.limbs = static_cast<unsigned long long*>(
      detail::device_alloc(4 * kSlice * sizeof(unsigned long long), "the exact reduction's limbs"));
  NCCL_CHECK(ncclCommInitRank(&m.comm, nranks, uid, rank));
}

NcclComm::~NcclComm() = default;

void NcclComm::allreduce_sum_i128(void* device_data, std::size_t n) {
  Impl& m = *impl_;
  CUDA_CHECK(cudaSetDevice(m.ordinal));
  auto* v = static_cast<unsigned __int128*>(device_data);
  for (std::size_t i0 = 0; i0 < n; i0 += kSlice) {
    const std::size_t k = n - i0 < kSlice ? n - i0 : kSlice;
    split_limbs<<<grid_for(k), 256, 0, m.stream>>>(v + i0, m.limbs, k);
    CUDA_CHECK_LAUNCH();
    NCCL_CHECK(ncclAllReduce(m.limbs, m.limbs, 4 * k, ncclUint64, ncclSum, m.comm, m.stream));
    join_limbs<<<grid_for(k), 256, 0, m.stream>>>(m.limbs, v + i0, k);
    CUDA_CHECK_LAUNCH();
  }
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

}  // namespace qsweep::cuda
