// block_params.cc — BlockParams: where each linear module sits in the fused matrices, the
// conversion from the fp32 BlockWeights of the loader, and the min/max quantizer initialisation.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "train/block_grad.h"

namespace qsweep {

LinearRows linear_rows(const ModelConfig& cfg, Linear l) {
  const int H = cfg.hidden_size, Q = cfg.q_dim(), KV = cfg.kv_dim(), I = cfg.intermediate_size;
  switch (l) {
    case Linear::Q: return {0, Q, H};
    case Linear::K: return {Q, KV, H};
    case Linear::V: return {Q + KV, KV, H};
    case Linear::O: return {0, H, Q};
    case Linear::Gate: return {0, I, H};
    case Linear::Up: return {I, I, H};
    case Linear::Down: return {0, H, I};
  }
  QS_ASSERT(false, "unknown linear module " << static_cast<int>(l));
}

template <typename T>
std::vector<T>& BlockParams<T>::matrix(Linear l) {
  return const_cast<std::vector<T>&>(static_cast<const BlockParams<T>*>(this)->matrix(l));
}

template <typename T>
const std::vector<T>& BlockParams<T>::matrix(Linear l) const {
  switch (l) {
    case Linear::Q: case Linear::K: case Linear::V: return qkv;
    case Linear::O: return o;
    case Linear::Gate: case Linear::Up: return gate_up;
    case Linear::Down: return down;
  }
  QS_ASSERT(false, "unknown linear module " << static_cast<int>(l));
}

template <typename T>
BlockParams<T> block_params_from(const BlockWeights& w) {
  return block_tensors_as<T>(w);
}

template <typename T>
void init_linear_quant_minmax(const ModelConfig& cfg, BlockParams<T>& p, Linear l, int bits, int group) {
  const LinearRows lr = linear_rows(cfg, l);
  QS_CHECK(bits >= 1 && bits <= 16, "quantizer of " << linear_short_name(l) << ": " << bits << " bits");
  QS_CHECK(group > 0, "quantizer of " << linear_short_name(l) << ": group " << group << " must be positive");
  const std::vector<T>& W = p.matrix(l);
  QS_CHECK(W.size() >= size_t(lr.row0 + lr.out) * lr.in, "quantizer of " << linear_short_name(l) << ": weights too small");
  const int ng = (lr.in + group - 1) / group;  // a last group may be shorter
  const T qmax = static_cast<T>((1 << bits) - 1);
  LinearQuant<T>& q = p.quant[static_cast<int>(l)];
  q.bits = bits, q.group = group;
  q.scales.assign(size_t(lr.out) * ng, T(0));
  q.zeros.assign(q.scales.size(), T(0));
  for (int r = 0; r < lr.out; ++r)
    for (int g = 0; g < ng; ++g) {
      const T* w = W.data() + size_t(lr.row0 + r) * lr.in + size_t(g) * group;
      const int len = std::min(group, lr.in - g * group);
      const T mn = *std::min_element(w, w + len), mx = *std::max_element(w, w + len);
      const T s = std::max((mx - mn) / qmax, T(1e-5));
      q.scales[size_t(r) * ng + g] = s;
      q.zeros[size_t(r) * ng + g] = -mn / s;
    }
}

template struct BlockParams<float>;
template struct BlockParams<double>;
template BlockParams<float> block_params_from<float>(const BlockWeights&);
template BlockParams<double> block_params_from<double>(const BlockWeights&);
template void init_linear_quant_minmax<float>(const ModelConfig&, BlockParams<float>&, Linear, int, int);
template void init_linear_quant_minmax<double>(const ModelConfig&, BlockParams<double>&, Linear, int, int);

}  // namespace qsweep
