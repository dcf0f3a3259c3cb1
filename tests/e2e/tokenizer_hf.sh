#!/usr/bin/env bash
# tokenizer_hf.sh — qsweep's tokenizer.json reader gives, token for token, the ids of the Rust
# library (tokenizers==0.23.3, the reference every Hugging Face model is tokenized with).
#
# Tokenizers (made by tokenizer_hf.py make-variants): the real SmolLM2 tokenizer; its
# vocabulary behind GPT-2's and Llama-3's pre-tokenizer regexes; SmolLM2 + NFKC + added tokens
# with lstrip/rstrip/single_word/normalized; a sentencepiece-style BPE trained here
# (byte_fallback, Metaspace first/always/split, the older Prepend+Replace normalizer).
# Texts: kjv-test, kjv-valid, tests/fixtures/tokenizer_mixed.txt (many scripts, emoji with ZWJ,
# digit runs, contractions, whitespace runs, no final newline), a single space, tab, newline.
# qsweep's ids come from `qsweep tokenize --model DIR --data FILE --output FILE`.
#
# Needs the SmolLM2 folder beside the binary (models/smollm2, made by
# ../shared/models/smollm2/make.sh when absent) and a venv from scripts/test_venv.sh; exit 77
# (skipped) when either cannot be made.
#
# usage: bash tokenizer_hf.sh <qsweep-binary> <source-dir> <shared-dir>   (run by ctest)
set -u
QSWEEP=${1:?usage: tokenizer_hf.sh QSWEEP_BINARY SOURCE_DIR SHARED_DIR}
SRC=${2:?source dir}
SHARED=${3:?shared dir}
BUILD=$(cd "$(dirname "$QSWEEP")" && pwd)
SMOL="$BUILD/models/smollm2"
HERE="$SRC/tests/e2e"

if [ ! -f "$SMOL/tokenizer.json" ]; then
  bash "$SHARED/models/smollm2/make.sh" "$SMOL" >&2 || { echo "SKIP: cannot build $SMOL"; exit 77; }
fi
PY=$(bash "$SRC/scripts/test_venv.sh" "$BUILD")
rc=$?
if [ $rc -ne 0 ]; then echo "SKIP: no Python venv with tokenizers (test_venv.sh exit $rc)"; exit 77; fi

T=$(mktemp -d "${TMPDIR:-/tmp}/qsweep-tokenizer-hf.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
printf ' ' >"$T/space.txt"
printf '\t' >"$T/tab.txt"
printf '\n' >"$T/newline.txt"
texts=("test=$SHARED/data/kjv-test.txt" "valid=$SHARED/data/kjv-valid.txt"
       "mixed=$SRC/tests/fixtures/tokenizer_mixed.txt"
       "space=$T/space.txt" "tab=$T/tab.txt" "newline=$T/newline.txt")

export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
variants=$("$PY" "$HERE/tokenizer_hf.py" make-variants "$T/variants" "$SMOL/tokenizer.json" "$SMOL/config.json" \
  "$SHARED/data/kjv-train.txt") || { echo "FAIL: make-variants"; exit 1; }
"$PY" "$HERE/tokenizer_hf.py" encode "$T/ref" "$T/variants" "${texts[@]}" || { echo "FAIL: reference encode"; exit 1; }

mkdir -p "$T/out"
failures=0
for v in $variants; do
  for nt in "${texts[@]}"; do
    name=${nt%%=*}
    if ! "$QSWEEP" tokenize --model "$T/variants/$v" --data "${nt#*=}" --output "$T/out/${v}__$name.ids" \
        >/dev/null 2>"$T/err"; then
      echo "FAIL $v/$name: qsweep tokenize failed: $(tail -n 1 "$T/err")"
      failures=$((failures + 1))
    fi
  done
done
"$PY" "$HERE/tokenizer_hf.py" compare "$T/ref" "$T/out" || failures=$((failures + 1))
[ "$failures" -eq 0 ] && echo "tokenizer_hf: all identical" && exit 0
exit 1
