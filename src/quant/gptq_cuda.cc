// gptq_cuda.cc — the GPU half of gptq_quantize (see gptq_cuda.h). One layer at a time per
// process: layers quantized on several threads take turns on the rank's GPU.
#include "quant/gptq_cuda.h"

#include "core/error.h"

#ifdef QSWEEP_WITH_CUDA
#include <algorithm>
#include <exception>
#include <mutex>

#include "qsweep/cuda/gptq.h"

namespace qsweep {

double gptq_columns_cuda(int ordinal, const std::vector<double>& W, const std::vector<double>& H, int out, int in,
                         double mean_diag, const std::vector<int>& perm, const GridSpec& grid, const GptqOptions& opt,
                         QuantizedLinear& q) {
  static std::mutex gpu;
  std::lock_guard<std::mutex> lock(gpu);
  const int B = std::max(1, opt.block_size), G = grid.group_len(in), ng = grid.groups(in);
  double damp = opt.damp;
  try {
    cuda::GptqColumns g(ordinal, out, in, B);
    bool ok = false;
    for (int attempt = 0; attempt < 6 && !ok; ++attempt, damp *= 10) ok = g.factor(H.data(), damp * mean_diag);
    QS_CHECK(ok, "GPTQ: the damped Hessian is not positive definite even with damping "
                     << damp / 10 << " x mean(diag H); the calibration inputs are degenerate");
    g.upload_weights(W.data());
    std::vector<double> cols;
    std::vector<float> tmp;
    std::vector<int32_t> gcol(B);
    std::vector<uint8_t> codes(static_cast<size_t>(out) * B);
    for (int i1 = 0; i1 < in; i1 += B) {
      const int i2 = std::min(in, i1 + B), count = i2 - i1;
      for (int i = 0; i < count; ++i) {  // grids of groups starting here, from W as it stands now
        const int col = i1 + i;
        if (!opt.act_order && grid.group_size > 0 && col % G == 0) {
          const int n = std::min(G, in - col), gi = col / G;
          cols.resize(static_cast<size_t>(out) * n);
          g.download_columns(col, n, cols.data());
          tmp.resize(n);
          for (int r = 0; r < out; ++r) {
            for (int c = 0; c < n; ++c) tmp[c] = static_cast<float>(cols[static_cast<size_t>(r) * n + c]);
            const GroupParams p = grid_params(tmp.data(), n, grid);
            q.scales[static_cast<size_t>(r) * ng + gi] = p.scale;
            q.zeros[static_cast<size_t>(r) * ng + gi] = p.zero;
          }
        }
        gcol[i] = grid.group_size < 0 ? 0 : (opt.act_order ? perm[col] : col) / G;
      }
      g.quantize_block(i1, i2, q.scales.data(), q.zeros.data(), ng, gcol.data(), grid.bits, codes.data());
      for (int r = 0; r < out; ++r)
        for (int i = 0; i < count; ++i)
          q.codes[static_cast<size_t>(r) * in + (opt.act_order ? perm[i1 + i] : i1 + i)] = codes[static_cast<size_t>(r) * count + i];
      g.update_rest(i1, i2);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    QS_THROW("cuda GPTQ (" << out << " x " << in << "): " << e.what());
  }
  return damp / 10;
}

}  // namespace qsweep

#else

namespace qsweep {
double gptq_columns_cuda(int, const std::vector<double>&, const std::vector<double>&, int, int, double,
                         const std::vector<int>&, const GridSpec&, const GptqOptions&, QuantizedLinear&) {
  QS_THROW("GPTQ on CUDA is not in this build (rebuild with cmake -DQSWEEP_WITH_CUDA=ON)");
}
}  // namespace qsweep

#endif
