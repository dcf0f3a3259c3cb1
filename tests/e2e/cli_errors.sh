#!/usr/bin/env bash
# cli_errors.sh — `qsweep eval` on bad inputs fails cleanly: a non-zero exit that is not a crash,
# a stderr line "qsweep: error: ..." naming the bad file or option, and no eval.h5 (nor a stray
# eval.h5.tmp.*) in --output-dir — a half-written result must never look like a result. One
# positive case checks that a tiny valid pre-tokenized run still succeeds and writes eval.h5.
#
# usage: bash cli_errors.sh <qsweep-binary> <source-dir> <shared-dir>   (run by ctest)
set -u

QSWEEP=${1:?usage: cli_errors.sh QSWEEP_BINARY SOURCE_DIR SHARED_DIR}
SRC=${2:?source dir}
# $3 (shared dir) is not needed: everything here uses the bundled demo model.

MODEL="$SRC/demo/kjv-llama"
TEXT="$SRC/demo/data/kjv-test.txt"
VOCAB=2048  # demo/kjv-llama/config.json

T=$(mktemp -d "${TMPDIR:-/tmp}/qsweep-cli-errors.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1  # a stray default ./eval.h5 would land here, not in the source tree

failures=0
n=0

# expect_error NAME NEEDLE -- ARGS...
#   Runs `qsweep ARGS...` with --output-dir "$T/out-NAME" appended when ARGS start with eval
#   and checks the three promises. NEEDLE is a fixed string the error line must contain.
expect_error() {
  local name=$1 needle=$2
  shift 3
  local out="$T/out-$name"
  local args=("$@")
  if [ "${args[0]:-}" = eval ]; then args+=(--output-dir "$out"); fi
  n=$((n + 1))
  "$QSWEEP" "${args[@]}" >"$T/$name.stdout" 2>"$T/$name.stderr"
  local rc=$?
  local why=""
  if [ "$rc" -eq 0 ]; then
    why="exit code 0"
  elif [ "$rc" -ge 128 ]; then
    why="exit code $rc (killed by a signal: a crash, not a clean error)"
  elif ! grep -q '^qsweep: error:' "$T/$name.stderr"; then
    why="no stderr line starting 'qsweep: error:'"
  elif ! grep '^qsweep: error:' "$T/$name.stderr" | grep -qF -- "$needle"; then
    why="the error line does not name '$needle'"
  elif [ -e "$out/eval.h5" ] || compgen -G "$out/eval.h5.tmp*" >/dev/null; then
    why="left $(find "$out" -mindepth 1 -printf '%f ')in --output-dir"
  elif [ -e "$T/eval.h5" ] || compgen -G "$T/eval.h5.tmp*" >/dev/null; then
    why="left eval.h5 in the working directory"
  fi
  if [ -z "$why" ]; then
    echo "PASS $name: $(grep -m1 '^qsweep: error:' "$T/$name.stderr")"
  else
    failures=$((failures + 1))
    echo "FAIL $name: $why (rc $rc)"
    sed 's/^/    stderr: /' "$T/$name.stderr" | head -n 5
  fi
}

# ---- inputs ---------------------------------------------------------------------------------

# A copy of the demo model with model.safetensors cut to 100 bytes (inside the JSON header).
cp -r "$MODEL" "$T/truncated-model"
truncate -s 100 "$T/truncated-model/model.safetensors"

# A copy whose config.json is not JSON.
cp -r "$MODEL" "$T/badconfig-model"
printf '{"model_type": "llama", "hidden_size": 256,\n' >"$T/badconfig-model/config.json"

printf 'hello' >"$T/short.txt"

# Pre-tokenized: valid ids except one equal to the vocabulary size, on line 3 of the file.
{
  echo '#qsweep-token-ids v1'
  for i in $(seq 1 50); do printf '%d ' $((i * 7 % VOCAB)); done
  echo
  echo "5 6 $VOCAB 7"
} >"$T/bad-ids.txt"

# Pre-tokenized: 600 valid ids (ctx 64 -> (600 + BOS) / 64 = 9 windows).
{
  echo '#qsweep-token-ids v1'
  for i in $(seq 0 599); do printf '%d\n' $(((i * 37 + 11) % VOCAB)); done
} >"$T/good-ids.txt"

# ---- error cases ----------------------------------------------------------------------------

expect_error missing-model-dir "$T/no-such-model" -- \
  eval --model "$T/no-such-model" --data "$TEXT" -q
expect_error truncated-safetensors "$T/truncated-model/model.safetensors" -- \
  eval --model "$T/truncated-model" --data "$TEXT" -q
expect_error config-not-json "$T/badconfig-model/config.json" -- \
  eval --model "$T/badconfig-model" --data "$TEXT" -q
expect_error missing-data "$T/no-such-data.txt" -- \
  eval --model "$MODEL" --data "$T/no-such-data.txt" -q
expect_error bogus-protocol "--protocol" -- \
  eval --model "$MODEL" --data "$TEXT" --protocol bogus -q
expect_error ctx-too-small "--ctx" -- \
  eval --model "$MODEL" --data "$TEXT" --ctx 2 -q
# The error must say which data file is too short (a sweep has several).
expect_error data-too-short "$T/short.txt" -- \
  eval --model "$MODEL" --data "$T/short.txt" -q
expect_error token-id-out-of-vocab "$T/bad-ids.txt" -- \
  eval --model "$MODEL" --data "$T/bad-ids.txt" -q
# The out-of-vocabulary id is on line 3 of bad-ids.txt, and the error says so.
expect_error token-id-line-number "$T/bad-ids.txt:3:" -- \
  eval --model "$MODEL" --data "$T/bad-ids.txt" -q
expect_error unknown-option "--bogus" -- \
  eval --model "$MODEL" --data "$TEXT" --bogus -q
expect_error unknown-subcommand "frobnicate" -- \
  frobnicate --model "$MODEL"

# ---- positive case --------------------------------------------------------------------------

n=$((n + 1))
good_out="$T/out-good"
"$QSWEEP" eval --model "$MODEL" --data "$T/good-ids.txt" --ctx 64 -q --output-dir "$good_out" \
  >"$T/good.stdout" 2>"$T/good.stderr"
rc=$?
why=""
if [ "$rc" -ne 0 ]; then
  why="exit code $rc"
elif ! grep -qE '^perplexity: [0-9.]+' "$T/good.stdout"; then
  why="no 'perplexity: <number>' line on stdout"
elif [ ! -s "$good_out/eval.h5" ]; then
  why="no eval.h5 in --output-dir"
elif compgen -G "$good_out/eval.h5.tmp*" >/dev/null; then
  why="left a temporary eval.h5.tmp* next to eval.h5"
fi
if [ -z "$why" ]; then
  echo "PASS valid-pretokenized-600: $(grep -m1 '^perplexity:' "$T/good.stdout")"
else
  failures=$((failures + 1))
  echo "FAIL valid-pretokenized-600: $why"
  sed 's/^/    stdout: /' "$T/good.stdout" | head -n 5
  sed 's/^/    stderr: /' "$T/good.stderr" | head -n 5
fi

echo "cli_errors: $((n - failures))/$n passed"
[ "$failures" -eq 0 ]
