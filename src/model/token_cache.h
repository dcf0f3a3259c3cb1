// token_cache.h — a per-user cache of tokenized texts, so that the second `calibrate`, `quantize`
// or `eval` on the same text skips the tokenizer (4–5 s for a 3.7 MB text through sentencepiece).
// An entry is keyed by the SHA-256 of the text's bytes (as tokenized: after the optional newline
// strip) and of every tokenizer file's bytes, the vocabulary size and the cache format: a changed
// byte in any of them is a miss, never a stale hit. Entries are binary (a header repeating the
// key, the count, then int32 ids) and written atomically (temporary file + rename), so ranks and
// concurrent jobs may share the folder. Where: $QSWEEP_TOKEN_CACHE, else
// $XDG_CACHE_HOME/qsweep/tokens, else $HOME/.cache/qsweep/tokens; QSWEEP_TOKEN_CACHE=off
// disables it; a build from a modified git tree ("-dirty" version) uses only a folder named by
// QSWEEP_TOKEN_CACHE. A cache that cannot be read or written is skipped with a note, never an error.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qsweep {

// The folder in use ("" when disabled or no home folder is known).
std::string token_cache_dir();

// The key of a text tokenized with the tokenizer files (their paths are read, not just named).
std::string token_cache_key(const std::string& text, const std::vector<std::string>& tokenizer_files, int vocab_size);

// The ids stored under key in dir, if a complete entry for exactly that key is there.
std::optional<std::vector<int32_t>> token_cache_get(const std::string& dir, const std::string& key);

// Store ids under key (creating dir); returns false (and logs why) when it cannot.
bool token_cache_put(const std::string& dir, const std::string& key, const std::vector<int32_t>& ids);

}  // namespace qsweep
