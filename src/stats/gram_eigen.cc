// gram_eigen.cc — Gram product (cblas_dsyrk) and eigenvalues (LAPACKE_dsyevd); on a GPU, the twin
// in kernels/gram_eigen.cu.
#include "stats/gram_eigen.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <functional>

#include "core/device.h"
#include "core/error.h"

#ifdef QSWEEP_WITH_CUDA
#include <exception>
#include <mutex>

#include "qsweep/cuda/gram_eigen.h"
#endif

namespace qsweep {

double gram_eigen_cost(int64_t out, int64_t in) {
  const double n = static_cast<double>(std::min(out, in)), m = static_cast<double>(std::max(out, in));
  return m * n * n / 2 + 2.0 / 3.0 * n * n * n;  // dsyrk + tridiagonalisation (no vectors)
}

std::vector<double> gram_eigenvalues(const float* w, int64_t out, int64_t in) {
#ifdef QSWEEP_WITH_CUDA
  if (current_device().kind == DeviceKind::Cuda) {  // the twin in kernels/gram_eigen.cu; threads take turns
    static std::mutex gpu;
    std::lock_guard<std::mutex> lock(gpu);
    try {
      return cuda::gram_eigenvalues(current_device().ordinal, w, out, in);
    } catch (const std::exception& e) {
      QS_THROW("cuda spectrum (" << out << " x " << in << "): " << e.what());
    }
  }
#endif
  const bool cols = in <= out;  // WᵀW (in x in) else WWᵀ (out x out)
  const int64_t n = cols ? in : out;
  std::vector<double> gram(static_cast<size_t>(n * n), 0.0);
  if (cols) {
    // WᵀW = Σ over row chunks of chunkᵀ chunk; the chunking is fixed, so is the rounding.
    const int64_t chunk = std::max<int64_t>(1, (int64_t(32) << 20) / (8 * in));
    std::vector<double> buf(static_cast<size_t>(std::min(chunk, out) * in));
    for (int64_t r0 = 0; r0 < out; r0 += chunk) {
      const int64_t rows = std::min(chunk, out - r0);
      std::copy(w + r0 * in, w + (r0 + rows) * in, buf.begin());
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(n), static_cast<int>(rows),
                  1.0, buf.data(), static_cast<int>(in), r0 == 0 ? 0.0 : 1.0, gram.data(),
                  static_cast<int>(n));
    }
  } else {
    std::vector<double> buf(w, w + out * in);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, static_cast<int>(n), static_cast<int>(in),
                1.0, buf.data(), static_cast<int>(in), 0.0, gram.data(), static_cast<int>(n));
  }
  std::vector<double> eig(static_cast<size_t>(n));
  const lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', static_cast<lapack_int>(n),
                                         gram.data(), static_cast<lapack_int>(n), eig.data());
  QS_CHECK(info == 0, "LAPACK dsyevd failed (info " << info << ") on a " << n << " x " << n
                                                     << " Gram matrix");
  std::sort(eig.begin(), eig.end(), std::greater<double>());
  return eig;
}

}  // namespace qsweep
