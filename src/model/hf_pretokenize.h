// hf_pretokenize.h — tokenizer.json pre-tokenizers: they cut normalized text into the pieces
// ("pre-tokens") the model encodes one by one (Sequence, Split, ByteLevel, Digits, Metaspace).
//
// Pieces stream through a chain of callbacks instead of being collected in vectors: a
// pre-tokenizer hands each piece it produces straight to the next one, and the last hands it to
// the model. A piece is a string_view valid only during the call. A pre-tokenizer keeps scratch
// buffers as mutable members, so one instance must not be used by two threads at once (the
// tokenizer serialises encode()).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "model/hf_json.h"

namespace qsweep {

// A non-owning reference to a callable, cheaper than std::function for per-piece callbacks.
template <typename Sig>
class FunctionRef;
template <typename R, typename... A>
class FunctionRef<R(A...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit by design
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, A... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(a...); }) {}
  R operator()(A... a) const { return call_(obj_, a...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

/// Receives a piece and whether it starts at offset 0 of the whole input (Metaspace's
/// prepend_scheme "first" prepends only there).
using PieceSink = FunctionRef<void(std::string_view, bool)>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Cuts s into pieces, each passed to emit (empty pieces are never emitted).
  virtual void split(std::string_view s, bool at_start, PieceSink emit) const = 0;
  /// The last ByteLevel step of the chain, when nothing runs after it (see set_raw_output).
  virtual class ByteLevelPreTokenizer* final_byte_level() { return nullptr; }
};

// ByteLevel: optional prefix space, GPT-2's regex split, then the byte-level alphabet.
class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where);
  ~ByteLevelPreTokenizer() override;
  void split(std::string_view s, bool at_start, PieceSink emit) const override;
  ByteLevelPreTokenizer* final_byte_level() override { return this; }
  /// Emit raw bytes instead of their byte-level characters: set when the BPE model matches
  /// raw bytes (its vocabulary un-mapped once at load), which saves the mapping per piece.
  void set_raw_output(bool raw) { raw_ = raw; }

 private:
  bool add_prefix_space_, raw_ = false;
  std::unique_ptr<class Regex> re_;
  mutable std::string prefixed_, mapped_;
};

/// The pre_tokenizer of tokenizer.json (j = the "pre_tokenizer" member, not null).
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonAt& j);

/// GPT-2's pre-tokenizer regex (ByteLevel with use_regex).
extern const char* const kGpt2Pattern;

}  // namespace qsweep
