// test_sp_chunked.cc — chunked, parallel sentencepiece encoding gives exactly the ids of one
// whole-text Encode(): on kjv-llama's tokenizer over the three kjv texts and over a text made of
// the awkward cases (space runs, tabs, newlines, non-ASCII spaces and letters); and it declines to
// cut with a vocabulary whose pieces span word boundaries (a model trained here without
// whitespace splitting).
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/sp_chunked.h"
#include "test_util.h"

namespace qsweep {
namespace {
using test::read_bytes;
using test::shared_dir;

sentencepiece::SentencePieceProcessor& kjv_sp() {
  static sentencepiece::SentencePieceProcessor sp;
  static bool loaded = sp.Load(shared_dir() + "/models/kjv-llama/fp32/tokenizer.model").ok();
  EXPECT_TRUE(loaded);
  return sp;
}

// A text of every case a cut must respect, repeated past the parallel threshold.
std::string awkward_text() {
  std::string unit =
      "In the  beginning\tGod created\n\nthe heaven  and the earth. ( x ) \xe2\x80\x9cquoted\xe2\x80\x9d "
      "caf\xc3\xa9 na\xc3\xafve \xe3\x80\x80ideographic space\xe3\x80\x80here, non-breaking\xc2\xa0space "
      "a b c d e f  g   h\r\nend. 12 345 6789 ";
  std::string t;
  while (t.size() < (300u << 10)) t += unit;
  return t;
}

TEST(SpChunked, CutsOnlyAtSingleSpacesBetweenPrintableAscii) {
  const std::string t = awkward_text();
  const std::vector<size_t> cuts = sp_cut_points(t, 1000);
  ASSERT_GT(cuts.size(), 100u);
  EXPECT_EQ(cuts[0], 0u);
  for (size_t i = 1; i < cuts.size(); ++i) {
    const size_t c = cuts[i];
    ASSERT_EQ(t[c], ' ');
    EXPECT_GT(t[c - 1], ' ');
    EXPECT_LT(t[c - 1], 0x7f);
    EXPECT_GT(t[c + 1], ' ');
    EXPECT_LT(t[c + 1], 0x7f);
    EXPECT_GE(c - cuts[i - 1], 1000u);
  }
}

TEST(SpChunked, KjvTextsEncodeExactlyAsWhole) {
  SpChunkedEncoder enc(kjv_sp(), "kjv tokenizer.model");
  ASSERT_TRUE(enc.vocabulary_allows());
  for (const char* name : {"kjv-train.txt", "kjv-test.txt", "kjv-valid.txt"}) {
    const std::string text = read_bytes(shared_dir() + "/data/" + name);
    SpPath path;
    const std::vector<int> ids = enc.encode(text, &path);
    EXPECT_EQ(path, SpPath::kChunked) << name;
    EXPECT_EQ(ids, enc.encode_whole(text)) << name;
  }
}

TEST(SpChunked, AwkwardTextEncodesExactlyAsWholeAtAnyChunkSize) {
  SpChunkedEncoder enc(kjv_sp(), "kjv tokenizer.model");
  const std::string t = awkward_text();
  const std::vector<int> whole = enc.encode_whole(t);
  for (size_t chunk : {1u, 7u, 100u, 4096u}) EXPECT_EQ(enc.encode_chunks(t, chunk), whole) << chunk;
  EXPECT_EQ(enc.encode(t), whole);
}

TEST(SpChunked, VocabularyWithPiecesAcrossSpacesIsEncodedWhole) {
  // A BPE model trained without whitespace splitting learns pieces such as "e▁" or "d▁the".
  const std::string dir = ::testing::TempDir() + "qsweep_sp_chunked";
  std::filesystem::create_directories(dir);
  const std::string corpus = dir + "/corpus.txt";
  {
    std::ofstream out(corpus);
    std::istringstream in(read_bytes(shared_dir() + "/data/kjv-valid.txt"));
    std::string line;
    for (int i = 0; i < 2000 && std::getline(in, line); ++i) out << line << "\n";
  }
  const auto st = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + corpus + " --model_prefix=" + dir + "/m --vocab_size=400 --model_type=bpe "
      "--split_by_whitespace=false --minloglevel=2 --num_threads=1");
  ASSERT_TRUE(st.ok()) << st.ToString();
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(dir + "/m.model").ok());
  SpChunkedEncoder enc(sp, "m.model");
  EXPECT_FALSE(enc.vocabulary_allows());
  const std::string t = awkward_text();
  SpPath path;
  EXPECT_EQ(enc.encode(t, &path), enc.encode_whole(t));
  EXPECT_EQ(path, SpPath::kVocabulary) << sp_path_name(path);
  EXPECT_NE(enc.encode_chunks(t, 1), enc.encode_whole(t));  // what cutting at every space would break
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qsweep
