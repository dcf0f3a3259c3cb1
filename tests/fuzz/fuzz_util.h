// fuzz_util.h — what every libFuzzer target of qsweep's parsers shares: a per-process scratch
// folder for the files the parsers read (their APIs take paths, so each input is written to a
// file first), splitting one input into several files at NUL bytes (JSON and INI text never hold
// a raw NUL), and the rule that decides what is a finding.
//
// The rule: a user's bad input may only end in qsweep::Error. Any other exception (a stray
// nlohmann::json::type_error, std::out_of_range, boost's errors) is a bug, and so is a crash, a
// sanitizer report, a hang or an allocation past libFuzzer's limit; expect_only_qsweep_errors
// turns the exception case into an abort that libFuzzer records with the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "core/error.h"

namespace qsweep::fuzz {

/// This process's scratch folder (mkdtemp under $TMPDIR, else /dev/shm, else /tmp; removed at
/// exit).
const std::string& scratch_dir();

/// Writes body to scratch_dir()/name and returns the path.
std::string write_scratch(const std::string& name, std::string_view body);

/// Removes scratch_dir()/name if it exists.
void remove_scratch(const std::string& name);

/// The input cut at its first max_parts-1 NUL bytes: at most max_parts parts, the last one
/// keeps any further NULs.
std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t max_parts);

/// Reports a broken invariant of a parser's result (not a user error) and aborts.
[[noreturn]] void finding(const std::string& what);

/// True when QSWEEP_FUZZ_VERBOSE is set: the expected errors are printed (to check what a seed
/// exercises: QSWEEP_FUZZ_VERBOSE=1 fuzz_config corpus/config/*).
bool verbose();

/// Runs f(); qsweep::Error is the expected outcome of bad input and is swallowed (printed when
/// verbose()); any other std::exception is a finding.
template <typename F>
void expect_only_qsweep_errors(F&& f) {
  try {
    f();
  } catch (const qsweep::Error& e) {
    if (verbose()) std::fprintf(stderr, "qsweep fuzz: expected error: %s\n", e.what());
  } catch (const std::exception& e) {
    finding(std::string("an exception other than qsweep::Error escaped: ") + typeid(e).name() + ": " + e.what());
  }
}

}  // namespace qsweep::fuzz
