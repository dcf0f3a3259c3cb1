// test_tasks.cc — multiple-choice task files (both formats, every malformed case names the file
// and line), their token sequences (choice and common-prefix boundaries, too-long tasks), and the
// exact chance p-value.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/task_scoring.h"
#include "eval/tasks.h"

namespace qsweep {
namespace {

// One token per byte; "ab" merges into one token (id 300) so that a boundary merge can be tested.
class ByteTokenizer : public TextTokenizer {
 public:
  explicit ByteTokenizer(bool bos) {
    if (bos) {
      special_.prefix = {1};
      special_.bos_id = 1;
      special_.adds_bos = true;
    }
  }
  std::vector<int32_t> encode(const std::string& text) const override {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 2, "ab") == 0) {
        ids.push_back(300);
        ++i;
      } else {
        ids.push_back(static_cast<unsigned char>(text[i]) + 2);
      }
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>&) const override { return ""; }
  int vocab_size() const override { return 301; }
  const std::string& path() const override { return path_; }
  std::string describe() const override { return "bytes"; }

 private:
  std::string path_ = "bytes";
};

std::string error_of(const std::string& body, TaskFormat f) {
  try {
    parse_tasks("t.jsonl", body, f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Tasks, ReadsJsonlWithIdsAndBlankLines) {
  const auto t = parse_tasks("t.jsonl",
                             "{\"context\": \"The sky is\", \"choices\": [\" blue\", \" green\"], \"gold\": 0, \"id\": \"q1\"}\n"
                             "\n"
                             "{\"context\": \"x\", \"choices\": [\" a\", \" b\", \" c\"], \"gold\": 2}\n",
                             TaskFormat::Jsonl);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].id, "q1");
  EXPECT_EQ(t[1].id, "2");
  EXPECT_EQ(t[1].line, 3);
  EXPECT_EQ(t[1].choices.size(), 3u);
  EXPECT_EQ(t[1].gold, 2);
}

TEST(Tasks, ReadsHellaswagAsContextSpaceEnding) {
  const auto t = parse_tasks("h.txt", "A man\n2\nruns.\nsits.\nsleeps.\neats.\nB\n0\nw\nx\ny\nz\n", TaskFormat::Hellaswag);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].context, "A man");
  EXPECT_EQ(t[0].choices[2], " sleeps.");
  EXPECT_EQ(t[0].gold, 2);
  EXPECT_EQ(t[1].line, 7);
}

TEST(Tasks, MalformedInputNamesFileAndLine) {
  const TaskFormat J = TaskFormat::Jsonl;
  EXPECT_NE(error_of("{\"context\": \"c\", \"choices\": [\" a\"], \"gold\": 0}\n", J).find("t.jsonl:1: the task has 1 choice(s), expected at least two"), std::string::npos);
  EXPECT_NE(error_of("\n{\"context\": \"c\", \"choices\": [\" a\", \" b\"], \"gold\": 2}\n", J).find("t.jsonl:2: gold index 2 is out of range"), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"c\", \"choices\": [\" a\", \" b\"], \"gold\": -1}\n", J).find("t.jsonl:1: gold index -1"), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"c\", \"choices\": [\" a\", \"\"], \"gold\": 0}\n", J).find("t.jsonl:1: choice 1 is empty"), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"c\", \"choices\": [\" a\", \" b\"], \"gold\": 0}\n{oops\n", J).find("t.jsonl:2: not a JSON object"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]\n", J).find("t.jsonl:1: expected a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{\"choices\": [\" a\", \" b\"], \"gold\": 0}\n", J).find("t.jsonl:1: expected a string \"context\""), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"c\", \"choices\": [\" a\", 3], \"gold\": 0}\n", J).find("t.jsonl:1: \"choices\" holds a number"), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"c\", \"choices\": [\" a\", \" b\"], \"gold\": \"0\"}\n", J).find("t.jsonl:1: expected an integer \"gold\""), std::string::npos);
  EXPECT_NE(error_of("\n\n", J).find("t.jsonl: no tasks"), std::string::npos);
  const TaskFormat H = TaskFormat::Hellaswag;
  EXPECT_NE(error_of("a\n0\nb\nc\nd\n", H).find("5 lines, expected a multiple of 6"), std::string::npos);
  EXPECT_NE(error_of("a\nx\nb\nc\nd\ne\n", H).find("t.jsonl:2: expected the gold ending's index"), std::string::npos);
  EXPECT_NE(error_of("a\n4\nb\nc\nd\ne\n", H).find("t.jsonl:1: gold index 4 is out of range"), std::string::npos);
  EXPECT_NE(error_of("a\n0\nb\n\nd\ne\n", H).find("t.jsonl:4: ending 1 is empty"), std::string::npos);
}

TEST(Tasks, SequencesMarkChoiceAndCommonPrefix) {
  ByteTokenizer tok(true);
  const auto t = parse_tasks("t.jsonl", "{\"context\": \"xy\", \"choices\": [\" pq\", \" pr\", \" s\"], \"gold\": 0}\n",
                             TaskFormat::Jsonl);
  const TaskSequences s = make_task_sequences("t.jsonl", t, tok, 64);
  ASSERT_EQ(s.seqs.size(), 3u);
  EXPECT_EQ(s.seqs[0].tokens, (std::vector<int32_t>{1, 'x' + 2, 'y' + 2, ' ' + 2, 'p' + 2, 'q' + 2}));
  for (const ChoiceSeq& c : s.seqs) {
    EXPECT_EQ(c.choice_begin, 3);  // BOS x y
    EXPECT_EQ(c.common_begin, 4);  // BOS x y ' ': the space is shared by every choice
  }
  EXPECT_EQ(s.seqs[0].n_chars, 3);
  EXPECT_EQ(s.seqs[2].first_scored(), 3);
}

TEST(Tasks, ChoiceTokensStartWhereTheContextsTokensStop) {
  ByteTokenizer tok(false);
  // "a" + "b..." tokenizes with a merge across the boundary: the choice begins at the merged token.
  const auto t = parse_tasks("t.jsonl", "{\"context\": \"ca\", \"choices\": [\"bc\", \"d\"], \"gold\": 0}\n", TaskFormat::Jsonl);
  const TaskSequences s = make_task_sequences("t.jsonl", t, tok, 64);
  EXPECT_EQ(s.seqs[0].tokens, (std::vector<int32_t>{'c' + 2, 300, 'c' + 2}));
  EXPECT_EQ(s.seqs[0].choice_begin, 1);
  EXPECT_EQ(s.seqs[1].choice_begin, 2);
  EXPECT_EQ(s.seqs[0].common_begin, 1);
}

TEST(Tasks, UnscorableAndTooLongTasks) {
  ByteTokenizer tok(false);
  const auto empty_ctx = parse_tasks("t.jsonl", "{\"context\": \"\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n", TaskFormat::Jsonl);
  try {
    make_task_sequences("t.jsonl", empty_ctx, tok, 64);
    FAIL() << "an empty context without BOS was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:1: choice 0's first token has no position"), std::string::npos) << e.what();
  }
  ByteTokenizer bos(true);
  const auto t = parse_tasks("t.jsonl",
                             "{\"context\": \"ctx\", \"choices\": [\" a\", \" b\"], \"gold\": 0}\n"
                             "{\"context\": \"a much longer context\", \"choices\": [\" a\", \" b\"], \"gold\": 1}\n",
                             TaskFormat::Jsonl);
  const TaskSequences s = make_task_sequences("t.jsonl", t, bos, 8);
  EXPECT_EQ(s.scored, std::vector<int>{0});
  EXPECT_EQ(s.too_long, std::vector<int>{1});
  EXPECT_EQ(s.seqs.size(), 2u);
}

TEST(Tasks, PoissonBinomialTailIsExact) {
  // Equal probabilities: the binomial tail.
  std::vector<double> p(10, 0.25);
  double tail = 0;
  for (int k = 7; k <= 10; ++k) {
    double c = 1;
    for (int i = 0; i < k; ++i) c = c * (10 - i) / (i + 1);
    tail += c * std::pow(0.25, k) * std::pow(0.75, 10 - k);
  }
  EXPECT_NEAR(poisson_binomial_upper_tail(p, 7), tail, 1e-15);
  EXPECT_DOUBLE_EQ(poisson_binomial_upper_tail(p, 0), 1.0);
  EXPECT_DOUBLE_EQ(poisson_binomial_upper_tail(p, 11), 0.0);
  // Mixed: P(both) for two trials.
  EXPECT_NEAR(poisson_binomial_upper_tail({0.5, 0.25}, 2), 0.125, 1e-15);
  EXPECT_NEAR(poisson_binomial_upper_tail({0.5, 0.25}, 1), 1 - 0.5 * 0.75, 1e-15);
}

}  // namespace
}  // namespace qsweep
