// sp_chunked.h — sentencepiece encoding of a long text in chunks, in parallel, exactly as one
// Encode() of the whole text would give it.
//
// Why: libsentencepiece encodes a whole 3.7 MB text several times slower than the same text cut
// into 16 KiB pieces (its whole-text work grows faster than the text), and one call uses one core.
// When it is exact: the text is cut only at a single ASCII space between two printable ASCII
// characters, the space dropped and the right-hand chunk encoded with the model's dummy prefix,
// which puts the same "▁" back. That holds when (a) no piece of the vocabulary has "▁" after its
// first character, so no piece ever spans a word boundary (BPE merges and unigram paths then
// decompose at every "▁"), (b) the model adds a dummy prefix, (c) normalization does not act
// across such a space. (a) is checked over the vocabulary; (b) and (c) by encoding the text's
// first chunks both ways. Where a check fails, the whole text is encoded at once, as before.
#pragma once
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace qsweep {

// Start offsets of the chunks of `text`, each about `chunk` bytes: cut at a space with printable
// ASCII on both sides; chunk i covers [cuts[i] + (i > 0), cuts[i+1]). cuts[0] == 0.
std::vector<size_t> sp_cut_points(const std::string& text, size_t chunk);

// Which path encode() took.
enum class SpPath {
  kChunked,     // cut at spaces, in parallel
  kShort,       // whole: too short to be worth cutting
  kVocabulary,  // whole: a vocabulary piece spans a word boundary (check (a))
  kSelfCheck,   // whole: cutting changed the ids of the text's first chunks (checks (b), (c))
};
const char* sp_path_name(SpPath p);

class SpChunkedEncoder {
 public:
  // `path`: the tokenizer file, named in errors.
  SpChunkedEncoder(const sentencepiece::SentencePieceProcessor& sp, std::string path);
  // Whether the vocabulary allows cutting at all (check (a) above).
  bool vocabulary_allows() const { return vocab_ok_; }
  // The ids of text, chunked and in parallel where exact; `path` (optional) says which path ran.
  std::vector<int> encode(const std::string& text, SpPath* path = nullptr) const;
  // One Encode() of the whole text (the reference).
  std::vector<int> encode_whole(const std::string& text) const;
  // Chunked encode without the self-check (for tests).
  std::vector<int> encode_chunks(const std::string& text, size_t chunk) const;

 private:
  const sentencepiece::SentencePieceProcessor& sp_;
  std::string path_;
  bool vocab_ok_ = false;
};

}  // namespace qsweep
