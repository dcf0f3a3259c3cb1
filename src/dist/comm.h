// comm.h — the communicator every stage uses: MPI when built with QSWEEP_WITH_MPI (host data and
// metadata), a single-rank stand-in otherwise, with the same interface so no stage has #ifdefs.
// Collectives gather in rank order; callers combine results in a fixed global order (window
// index, layer index) so sums never depend on the number of ranks.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace qsweep {

class Comm {
 public:
  // Once per process, before any Comm is used: MPI_Init_thread (FUNNELED) when an MPI launcher
  // started the process (see mpi_wanted), else a single rank without MPI.
  static void init(int* argc, char*** argv);
  static void finalize();
  static bool initialized();
  static bool uses_mpi();  // MPI_Init ran
  static Comm world();
  // A single-rank communicator that needs no MPI initialisation (tests, tools).
  static Comm local() { return Comm(); }

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Identifies the underlying communicator within this process (for caches of objects made per
  // communicator, e.g. NCCL's): MPI communicators made here are never freed, so keys stay unique.
  uintptr_t key() const;
  // Ranks of this communicator sharing this node (for the default thread count).
  int local_size() const;
  // This rank's index among them (MPI_Comm_split_type SHARED): the rank→GPU binding.
  int local_rank() const;
  std::vector<std::string> hostnames() const;  // one per rank, rank order, on every rank
  void barrier() const;
  // Sub-communicator of the ranks with the same `color`, ranked as in this one (MPI_Comm_split).
  Comm split(int color) const;
  // Concatenation of every rank's vector, in rank order, on every rank.
  std::vector<double> allgatherv(const std::vector<double>& mine) const;
  std::vector<int64_t> allgatherv(const std::vector<int64_t>& mine) const;
  std::vector<float> allgatherv(const std::vector<float>& mine) const;
  // Personalised exchange, collective: to[r] goes to rank r (to.size() == size()); returns
  // from[r], what rank r sent to this one. Any sizes: counts travel as 64-bit integers and the
  // data in pieces of at most 2^27 elements, so no int count overflows.
  std::vector<std::vector<double>> alltoallv(const std::vector<std::vector<double>>& to) const;
  std::vector<std::vector<float>> alltoallv(const std::vector<std::vector<float>>& to) const;
  double allreduce_max(double v) const;
  void allreduce_max(std::vector<double>& v) const;  // element-wise, in place
  // Broadcast of raw bytes from `root`.
  void bcast(void* data, size_t bytes, int root) const;
  // Point-to-point raw bytes (any size; sent in pieces of at most 1 GiB).
  void send(const void* data, size_t bytes, int dest, int tag) const;
  void recv(void* data, size_t bytes, int src, int tag) const;
  // Element-wise sum of n 128-bit two's-complement integers (16 bytes each, little-endian) over
  // all ranks, in place on every rank. Integer addition wraps exactly, so the result does not
  // depend on the order the MPI library combines ranks in (see stats/exact_gram.h).
  void allreduce_sum_i128(void* data, size_t n) const;
  // Failure agreement, collective: every rank passes the error it caught since the last
  // agreement ("" for none). When any rank has one, every rank throws qsweep::Error with the
  // message of the lowest-numbered failing rank, so a check that fails on one rank (the owner of
  // a task, the rank holding a bad window) stops all of them at the same point instead of leaving
  // the others waiting in the next collective. One small allreduce when nothing failed.
  void agree_or_throw(const std::string& my_error) const;
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0, size_ = 1;
#ifdef QSWEEP_WITH_MPI
  void* comm_ = nullptr;  // MPI_Comm, kept opaque so MPI headers do not leak
#endif
};

// Runs f, this rank's share of a step, then agrees on failures (Comm::agree_or_throw): an
// exception on any rank (a GPU out of memory, a bad window) stops every rank here with the lowest
// failing rank's message, before the next collective could leave the others waiting.
template <typename F>
void run_agreed(const Comm& comm, F&& f) {
  std::string error;
  try {
    f();
  } catch (const std::exception& e) {
    error = *e.what() ? e.what() : "a rank failed";
  }
  comm.agree_or_throw(error);
}

// Whether to initialise MPI, from the environment (`env` is getenv or a test's stand-in):
// QSWEEP_MPI=on|off decides when set; otherwise yes exactly when mpi_launcher_present.
bool mpi_launcher_present(const std::function<const char*(const char*)>& env);
bool mpi_wanted(const std::function<const char*(const char*)>& env);

// Contiguous share [begin, end) of `n` items owned by `rank` of `size` (balanced to within one).
inline void block_range(int64_t n, int rank, int size, int64_t* begin, int64_t* end) {
  *begin = n * rank / size;
  *end = n * (rank + 1) / size;
}

}  // namespace qsweep
