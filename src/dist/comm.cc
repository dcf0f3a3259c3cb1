// comm.cc — MPI implementation of Comm (or the single-rank stand-in).
#include "dist/comm.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>

#include "core/error.h"

#ifdef QSWEEP_WITH_MPI
#include <mpi.h>
#endif

namespace qsweep {

namespace {
std::string this_host() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}
bool g_init = false;
}  // namespace

bool mpi_launcher_present(const std::function<const char*(const char*)>& env) {
  // Set by Open MPI's mpirun/prterun, PMIx servers (srun --mpi=pmix), PMI-1/2 launchers (MPICH
  // hydra, Intel MPI, srun --mpi=pmi2) and MVAPICH; a Slurm step of several tasks counts too, so a
  // step started without an MPI plugin still goes through MPI_Init (and fails there) instead of
  // running N copies that each think they are rank 0.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS",
                        "MV2_COMM_WORLD_SIZE"})
    if (env(v)) return true;
  const char* tasks = env("SLURM_STEP_NUM_TASKS");
  return tasks && std::atoi(tasks) > 1;
}

bool mpi_wanted(const std::function<const char*(const char*)>& env) {
  const char* f = env("QSWEEP_MPI");
  if (f && !std::strcmp(f, "on")) return true;
  if (f && !std::strcmp(f, "off")) return false;
  return mpi_launcher_present(env);
}

#ifdef QSWEEP_WITH_MPI

namespace {
MPI_Comm as_mpi(void* c) { return reinterpret_cast<MPI_Comm>(c); }
}  // namespace

namespace {
bool g_mpi = false;  // MPI_Init ran (a launcher started this process, or QSWEEP_MPI=on)
}  // namespace

void Comm::init(int* argc, char*** argv) {
  // A process no launcher started is one rank: MPI's singleton initialisation (about 0.4 s with
  // Open MPI, which starts a PMIx server) buys nothing there, so it is skipped.
  if (mpi_wanted([](const char* v) { return static_cast<const char*>(std::getenv(v)); })) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    g_mpi = true;
  }
  g_init = true;
}
void Comm::finalize() {
  if (g_mpi) MPI_Finalize();
  g_mpi = false;
  g_init = false;
}
bool Comm::initialized() { return g_init; }
bool Comm::uses_mpi() { return g_mpi; }

Comm Comm::world() {
  QS_ASSERT(g_init, "Comm::init was not called");
  if (!g_mpi) return Comm();
  Comm c;
  c.comm_ = reinterpret_cast<void*>(MPI_COMM_WORLD);
  MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &c.size_);
  return c;
}

namespace {
// This rank's place among the ranks of `c` sharing its node: {rank, size}.
std::pair<int, int> node_local(MPI_Comm c, int rank) {
  MPI_Comm local;
  MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
  int r = 0, n = 1;
  MPI_Comm_rank(local, &r);
  MPI_Comm_size(local, &n);
  MPI_Comm_free(&local);
  return {r, n};
}
}  // namespace

uintptr_t Comm::key() const { return reinterpret_cast<uintptr_t>(comm_); }
int Comm::local_size() const { return comm_ ? node_local(as_mpi(comm_), rank_).second : 1; }
int Comm::local_rank() const { return comm_ ? node_local(as_mpi(comm_), rank_).first : 0; }

std::vector<std::string> Comm::hostnames() const {
  if (!comm_) return {this_host()};
  char mine[256] = {0};
  const std::string h = this_host();
  h.copy(mine, sizeof(mine) - 1);
  std::vector<char> all(static_cast<size_t>(size_) * 256);
  MPI_Allgather(mine, 256, MPI_CHAR, all.data(), 256, MPI_CHAR, as_mpi(comm_));
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.emplace_back(all.data() + static_cast<size_t>(r) * 256);
  return out;
}

Comm Comm::split(int color) const {
  if (!comm_) return *this;
  MPI_Comm sub;
  MPI_Comm_split(as_mpi(comm_), color, rank_, &sub);
  Comm c;
  c.comm_ = reinterpret_cast<void*>(sub);
  MPI_Comm_rank(sub, &c.rank_);
  MPI_Comm_size(sub, &c.size_);
  return c;
}

void Comm::barrier() const {
  if (comm_) MPI_Barrier(as_mpi(comm_));
}

namespace {
template <typename T>
std::vector<T> allgatherv_impl(MPI_Comm comm, int size, const std::vector<T>& mine, MPI_Datatype t) {
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(size), displs(size);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  int total = 0;
  for (int r = 0; r < size; ++r) {
    displs[r] = total;
    total += counts[r];
  }
  std::vector<T> out(total);
  MPI_Allgatherv(mine.data(), n, t, out.data(), counts.data(), displs.data(), t, comm);
  return out;
}
}  // namespace

std::vector<double> Comm::allgatherv(const std::vector<double>& mine) const {
  if (!comm_) return mine;
  return allgatherv_impl(as_mpi(comm_), size_, mine, MPI_DOUBLE);
}
std::vector<int64_t> Comm::allgatherv(const std::vector<int64_t>& mine) const {
  if (!comm_) return mine;
  return allgatherv_impl(as_mpi(comm_), size_, mine, MPI_INT64_T);
}

std::vector<float> Comm::allgatherv(const std::vector<float>& mine) const {
  if (!comm_) return mine;
  return allgatherv_impl(as_mpi(comm_), size_, mine, MPI_FLOAT);
}

namespace {
template <typename T>
std::vector<std::vector<T>> alltoallv_impl(MPI_Comm comm, int rank, int size, const std::vector<std::vector<T>>& to,
                                           MPI_Datatype type) {
  std::vector<std::vector<T>> from(static_cast<size_t>(size));
  if (size == 1) {
    from[0] = to[0];
    return from;
  }
  std::vector<uint64_t> out_n(static_cast<size_t>(size)), in_n(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) out_n[static_cast<size_t>(r)] = to[static_cast<size_t>(r)].size();
  MPI_Alltoall(out_n.data(), 1, MPI_UINT64_T, in_n.data(), 1, MPI_UINT64_T, comm);
  const size_t kPiece = size_t(1) << 27;
  std::vector<MPI_Request> reqs;
  for (int r = 0; r < size; ++r) {  // receives first, then sends: no ordering can deadlock
    from[static_cast<size_t>(r)].resize(in_n[static_cast<size_t>(r)]);
    if (r == rank) continue;
    T* d = from[static_cast<size_t>(r)].data();
    for (size_t off = 0, piece = 0; off < in_n[static_cast<size_t>(r)]; off += kPiece, ++piece) {
      reqs.emplace_back();
      MPI_Irecv(d + off, static_cast<int>(std::min(kPiece, in_n[static_cast<size_t>(r)] - off)), type, r,
                static_cast<int>(piece % 32768), comm, &reqs.back());
    }
  }
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    const T* d = to[static_cast<size_t>(r)].data();
    for (size_t off = 0, piece = 0; off < out_n[static_cast<size_t>(r)]; off += kPiece, ++piece) {
      reqs.emplace_back();
      MPI_Isend(d + off, static_cast<int>(std::min(kPiece, out_n[static_cast<size_t>(r)] - off)), type, r,
                static_cast<int>(piece % 32768), comm, &reqs.back());
    }
  }
  from[static_cast<size_t>(rank)] = to[static_cast<size_t>(rank)];
  MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
  return from;
}
}  // namespace

std::vector<std::vector<double>> Comm::alltoallv(const std::vector<std::vector<double>>& to) const {
  QS_CHECK(static_cast<int>(to.size()) == size_, "Comm::alltoallv: " << to.size() << " parts for " << size_ << " ranks");
  if (!comm_) return to;
  return alltoallv_impl(as_mpi(comm_), rank_, size_, to, MPI_DOUBLE);
}
std::vector<std::vector<float>> Comm::alltoallv(const std::vector<std::vector<float>>& to) const {
  QS_CHECK(static_cast<int>(to.size()) == size_, "Comm::alltoallv: " << to.size() << " parts for " << size_ << " ranks");
  if (!comm_) return to;
  return alltoallv_impl(as_mpi(comm_), rank_, size_, to, MPI_FLOAT);
}

double Comm::allreduce_max(double v) const {
  if (!comm_) return v;
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, as_mpi(comm_));
  return out;
}

void Comm::allreduce_max(std::vector<double>& v) const {
  if (!comm_ || size_ == 1 || v.empty()) return;
  MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_MAX, as_mpi(comm_));
}

void Comm::bcast(void* data, size_t bytes, int root) const {
  if (!comm_ || size_ == 1 || bytes == 0) return;
  char* p = static_cast<char*>(data);
  const size_t kMax = size_t(1) << 30;  // MPI counts are int
  for (size_t off = 0; off < bytes; off += kMax)
    MPI_Bcast(p + off, static_cast<int>(std::min(kMax, bytes - off)), MPI_BYTE, root, as_mpi(comm_));
}

void Comm::send(const void* data, size_t bytes, int dest, int tag) const {
  const char* p = static_cast<const char*>(data);
  const size_t kMax = size_t(1) << 30;
  for (size_t off = 0; off < bytes || off == 0; off += kMax) {
    MPI_Send(p + off, static_cast<int>(std::min(kMax, bytes - off)), MPI_BYTE, dest, tag, as_mpi(comm_));
    if (bytes == 0) break;
  }
}

void Comm::recv(void* data, size_t bytes, int src, int tag) const {
  char* p = static_cast<char*>(data);
  const size_t kMax = size_t(1) << 30;
  for (size_t off = 0; off < bytes || off == 0; off += kMax) {
    MPI_Recv(p + off, static_cast<int>(std::min(kMax, bytes - off)), MPI_BYTE, src, tag, as_mpi(comm_),
             MPI_STATUS_IGNORE);
    if (bytes == 0) break;
  }
}

namespace {
void add_i128(void* in, void* inout, int* len, MPI_Datatype*) {
  const unsigned __int128* a = static_cast<const unsigned __int128*>(in);
  unsigned __int128* b = static_cast<unsigned __int128*>(inout);
  for (int i = 0; i < *len; ++i) b[i] += a[i];
}
}  // namespace

void Comm::allreduce_sum_i128(void* data, size_t n) const {
  if (!comm_ || size_ == 1 || n == 0) return;
  static MPI_Datatype type = MPI_DATATYPE_NULL;
  static MPI_Op op = MPI_OP_NULL;
  if (type == MPI_DATATYPE_NULL) {
    MPI_Type_contiguous(16, MPI_BYTE, &type);
    MPI_Type_commit(&type);
    MPI_Op_create(&add_i128, 1, &op);
  }
  // Slices of 4M elements (64 MB), so the library's temporary buffers stay small.
  char* p = static_cast<char*>(data);
  const size_t kSlice = size_t(1) << 22;
  for (size_t off = 0; off < n; off += kSlice)
    MPI_Allreduce(MPI_IN_PLACE, p + off * 16, static_cast<int>(std::min(kSlice, n - off)), type, op, as_mpi(comm_));
}

void Comm::agree_or_throw(const std::string& my_error) const {
  if (!comm_ || size_ == 1) {
    if (!my_error.empty()) throw Error(my_error);
    return;
  }
  int mine = my_error.empty() ? size_ : rank_, first = size_;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, as_mpi(comm_));
  if (first == size_) return;
  uint64_t n = rank_ == first ? my_error.size() : 0;
  MPI_Bcast(&n, 1, MPI_UINT64_T, first, as_mpi(comm_));
  std::string msg = rank_ == first ? my_error : std::string(n, '\0');
  bcast(&msg[0], n, first);
  throw Error(msg);
}

void Comm::abort(int code) const {
  if (comm_ && size_ > 1) MPI_Abort(as_mpi(comm_), code);
  finalize();  // a single rank exits cleanly, so mpirun -n 1 reports only our exit code
  std::exit(code);
}

#else  // single rank

void Comm::init(int*, char***) { g_init = true; }
void Comm::finalize() { g_init = false; }
bool Comm::initialized() { return g_init; }
bool Comm::uses_mpi() { return false; }
Comm Comm::world() { return Comm(); }
int Comm::local_size() const { return 1; }
uintptr_t Comm::key() const { return 0; }
int Comm::local_rank() const { return 0; }
std::vector<std::string> Comm::hostnames() const { return {this_host()}; }
void Comm::barrier() const {}
Comm Comm::split(int) const { return *this; }
std::vector<double> Comm::allgatherv(const std::vector<double>& mine) const { return mine; }
std::vector<int64_t> Comm::allgatherv(const std::vector<int64_t>& mine) const { return mine; }
std::vector<float> Comm::allgatherv(const std::vector<float>& mine) const { return mine; }
std::vector<std::vector<double>> Comm::alltoallv(const std::vector<std::vector<double>>& to) const {
  QS_CHECK(to.size() == 1, "Comm::alltoallv: " << to.size() << " parts for 1 rank");
  return to;
}
std::vector<std::vector<float>> Comm::alltoallv(const std::vector<std::vector<float>>& to) const {
  QS_CHECK(to.size() == 1, "Comm::alltoallv: " << to.size() << " parts for 1 rank");
  return to;
}
double Comm::allreduce_max(double v) const { return v; }
void Comm::abort(int code) const { std::exit(code); }
void Comm::agree_or_throw(const std::string& my_error) const {
  if (!my_error.empty()) throw Error(my_error);
}
void Comm::bcast(void*, size_t, int) const {}
void Comm::allreduce_max(std::vector<double>&) const {}
void Comm::send(const void*, size_t, int, int) const { QS_THROW("Comm::send on a single-rank build"); }
void Comm::recv(void*, size_t, int, int) const { QS_THROW("Comm::recv on a single-rank build"); }
void Comm::allreduce_sum_i128(void*, size_t) const {}

#endif

}  // namespace qsweep
