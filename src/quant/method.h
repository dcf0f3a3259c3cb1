// method.h — a quantization method as one unit: its name, its options (a fragment of `qsweep
// quantize`'s options bound into QuantizeOptions, so job files validate them), its checks, its
// per-block work (a search that transforms the block before its layers are quantized: AWQ's
// scales), its per-layer work, and the attributes it stores. The pipeline (quantize_model.cc)
// only calls these hooks; refinements (quant/refine.h) then compose with whatever a method made.
// Adding a method: one file with its class and a line in quant_methods() (method_registry.cc).
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/llama_weights.h"
#include "quant/grid.h"

namespace qsweep {

class Comm;
class H5Writer;
class BlockCalibStats;
struct InputStats;
struct LinearResult;
struct QuantizeOptions;

// What a method's block stage leaves for its layers (per Linear; empty / NaN: nothing).
struct BlockTransform {
  std::vector<std::vector<float>> col_scale, row_scale;  // quantized matrix = diag(row) W diag(col)
  std::vector<double> alpha;                             // the searched exponent (AWQ)
  std::vector<std::vector<float>> original;              // the weights before the transform
  std::vector<QuantizedLinear> trained;                  // a block-trained grid per Linear (blockap)
  std::vector<double> train_loss, val_loss;              // its training curves (blockap)
  int epochs = 0;
  std::vector<std::pair<std::string, double>> attrs;     // attributes of /blocks/<i> (blockap: its SGRA budget)
};

// The rank's calibration windows at this block, for methods that train on them
// (needs_block_data): the quantized model's inputs and the full-precision block's outputs on
// full-precision inputs, [count, seq_len, hidden], global windows [first, first + count) of n.
struct BlockData {
  const std::vector<float>& x_q;
  const std::vector<float>& y_fp;
  int first, count, n, seq_len;
};

struct BlockContext {
  int block;
  const ModelConfig& cfg;
  BlockWeights& weights;  // a method may transform them (and fold scales into the norms)
  const BlockCalibStats& stats;
  const QuantizeOptions& opt;
  const Comm& comm;
  const BlockData* data = nullptr;  // only for methods that need it
};

struct LayerWork {
  const float* M;  // the weights to quantize [out, in] (after the block transform)
  int out, in;
  const InputStats& st;              // the layer's input statistics (untransformed Σxxᵀ)
  const std::vector<float>& col_scale;  // the block transform's input scales (empty: none)
  GridSpec grid;
  bool clip_allowed;  // false for q/k, lm_head and sensitivity candidates
  const QuantizeOptions& opt;
  const QuantizedLinear* trained = nullptr;  // the block stage's trained grid (blockap)
};

class QuantMethodDef {
 public:
  virtual ~QuantMethodDef() = default;
  virtual const char* name() const = 0;
  // Its options (bound into `opt`), added to `qsweep quantize`'s and the job files' [quantize].
  virtual void add_options(boost::program_options::options_description&, QuantizeOptions&) const {}
  // After parsing, with opt.method set (to this method or another): derive and check its options;
  // throws naming the option when one applies to this method only and another was chosen.
  virtual void finish_options(QuantizeOptions&) const {}
  // Whether it moves scales into the previous layer, so that a layer cannot be quantized alone.
  virtual bool transforms_block() const { return false; }
  virtual void transform_block(const BlockContext&, BlockTransform&) const {}
  // Whether its block stage trains on the block's calibration inputs and targets (BlockData):
  // the pipeline then keeps a full-precision copy of the hidden states beside the propagated ones.
  virtual bool needs_block_data() const { return false; }
  virtual double layer_cost(double out, double in) const { return out * in; }
  virtual void quantize_layer(LinearResult& res, const LayerWork& w) const = 0;
  virtual void write_attrs(H5Writer&, const QuantizeOptions&) const {}
};

// Every method, in the order their options appear; find_quant_method throws listing the names.
const std::vector<const QuantMethodDef*>& quant_methods();
const QuantMethodDef* find_quant_method(const std::string& name);

}  // namespace qsweep
