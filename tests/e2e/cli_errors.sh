#!/usr/bin/env bash
# cli_errors.sh — `qsweep eval` on bad inputs fails cleanly: a non-zero exit that is not a crash,
# a stderr line "qsweep: error: ..." naming the bad file or option, and no eval.h5 (nor a stray
# eval.h5.tmp.*) in --output-dir, nor the --output-dir itself when the run created it — a
# half-written result must never look like a result. One
# positive case checks that a tiny valid pre-tokenized run still succeeds and writes eval.h5.
#
# usage: bash cli_errors.sh <qsweep-binary> <source-dir> <shared-dir>   (run by ctest)
set -u

QSWEEP=${1:?usage: cli_errors.sh QSWEEP_BINARY SOURCE_DIR SHARED_DIR}
SRC=${2:?source dir}
# $3 (shared dir) is not needed: everything here uses the bundled demo model or make-model.

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
  elif [ -e "$out" ]; then
    why="created --output-dir $out (a failed run leaves no folder behind)"
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
mkdir -p "$T/a-directory"
expect_error data-is-directory "is a directory, not a data file" -- \
  eval --model "$MODEL" --data "$T/a-directory" -q
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

# ---- tokenizer.json / tokenizer_config.json / config.json of a Hugging Face folder -------------
# A make-model folder with a small byte-level BPE tokenizer.json copied in is a complete model
# folder; each broken copy must fail naming the file and what is wrong, with no eval.h5.
TOKM="$T/tok-model"
"$QSWEEP" make-model --output "$TOKM" --hidden 64 --intermediate 128 --layers 1 --heads 2 --kv-heads 1 \
  --vocab 300 >/dev/null 2>&1 || echo "FAIL make-model for the tokenizer cases"
rm -f "$TOKM"/tokenizer.model
/usr/bin/python3 - "$TOKM" <<'PY'
import json, sys
# GPT-2's byte alphabet: printable bytes map to themselves, the rest to U+0100 onwards.
keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
chars, n = {}, 0
for b in range(256):
    if b in keep: chars[b] = chr(b)
    else: chars[b] = chr(256 + n); n += 1
vocab = {chars[b]: b for b in range(256)}
merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"]]
for a, c in merges: vocab[a + c] = len(vocab)
tok = {"version": "1.0", "added_tokens": [{"id": 299, "content": "<s>", "special": True, "single_word": False,
       "lstrip": False, "rstrip": False, "normalized": False}],
       "normalizer": None,
       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
       "post_processor": None, "decoder": {"type": "ByteLevel"},
       "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False, "vocab": vocab, "merges": merges}}
json.dump(tok, open(sys.argv[1] + "/tokenizer.json", "w"))
json.dump({"add_bos_token": True, "bos_token": "<s>"}, open(sys.argv[1] + "/tokenizer_config.json", "w"))
PY
# broken COPY-NAME PYTHON-EDIT: a copy of the folder whose JSON files the edit changes
# (tj = tokenizer.json, tc = tokenizer_config.json, cj = config.json, as Python objects;
# an edit may also set raw_tj / raw_tc to write text that is not JSON).
broken() {
  cp -r "$TOKM" "$T/$1"
  /usr/bin/python3 - "$T/$1" "$2" <<'PY'
import json, sys
d, edit = sys.argv[1], sys.argv[2]
tj = json.load(open(d + "/tokenizer.json")); tc = json.load(open(d + "/tokenizer_config.json"))
cj = json.load(open(d + "/config.json")); raw_tj = raw_tc = None
exec(edit)
open(d + "/tokenizer.json", "w").write(raw_tj if raw_tj is not None else json.dumps(tj))
open(d + "/tokenizer_config.json", "w").write(raw_tc if raw_tc is not None else json.dumps(tc))
json.dump(cj, open(d + "/config.json", "w"))
PY
}
broken tj-truncated 'raw_tj = json.dumps(tj)[:200]'
broken tj-wordpiece 'tj["model"]["type"] = "WordPiece"'
broken tj-pretok 'tj["pre_tokenizer"] = {"type": "Whitespace"}'
broken tj-split-behavior 'tj["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Sideways", "invert": False}'
broken tj-bad-regex 'tj["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(\\p{L}+"}, "behavior": "Isolated", "invert": False}'
broken tj-normalizer 'tj["normalizer"] = {"type": "BertNormalizer"}'
broken tj-merge-unknown 'tj["model"]["merges"].append(["zz", "qq"])'
broken tj-no-vocab 'del tj["model"]["vocab"]'
broken tc-not-json 'raw_tc = "{\"add_bos_token\": tru"'
broken tc-add-bos-string 'tc["add_bos_token"] = "yes"'
broken tc-bos-unknown 'tc["bos_token"] = "<bos-not-there>"'
broken cj-vocab-small 'tj["added_tokens"].append(dict(tj["added_tokens"][0], id=350, content="<big>"))'
broken cj-model-type 'cj["model_type"] = "gpt2"'
expect_error tokenizer-json-not-json "tokenizer.json: not valid JSON at byte" -- eval --model "$T/tj-truncated" --data "$TEXT" -q
expect_error tokenizer-json-wordpiece "model.type" -- eval --model "$T/tj-wordpiece" --data "$TEXT" -q
expect_error tokenizer-json-pretokenizer "\"Whitespace\"" -- eval --model "$T/tj-pretok" --data "$TEXT" -q
expect_error tokenizer-json-split-behavior "Sideways" -- eval --model "$T/tj-split-behavior" --data "$TEXT" -q
expect_error tokenizer-json-bad-regex "pre_tokenizer.pattern" -- eval --model "$T/tj-bad-regex" --data "$TEXT" -q
expect_error tokenizer-json-normalizer "BertNormalizer" -- eval --model "$T/tj-normalizer" --data "$TEXT" -q
expect_error tokenizer-json-merge-unknown "model.merges[3]" -- eval --model "$T/tj-merge-unknown" --data "$TEXT" -q
expect_error tokenizer-json-no-vocab "model.vocab" -- eval --model "$T/tj-no-vocab" --data "$TEXT" -q
expect_error tokenizer-config-not-json "tokenizer_config.json" -- eval --model "$T/tc-not-json" --data "$TEXT" -q
expect_error tokenizer-config-add-bos "add_bos_token" -- eval --model "$T/tc-add-bos-string" --data "$TEXT" -q
expect_error tokenizer-config-bos-unknown "<bos-not-there>" -- eval --model "$T/tc-bos-unknown" --data "$TEXT" -q
expect_error config-vocab-below-tokenizer "vocab_size" -- eval --model "$T/cj-vocab-small" --data "$TEXT" -q
expect_error config-unknown-model-type "gpt2" -- eval --model "$T/cj-model-type" --data "$TEXT" -q

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

# Text that is not valid UTF-8 still evaluates, with a warning naming the file and the offset of
# the first ill-formed byte.
n=$((n + 1))
{ head -c 3000 "$TEXT"; printf 'abc\xff\xfe def\n'; head -c 3000 "$TEXT"; } >"$T/latin1.txt"
if "$QSWEEP" eval --model "$TOKM" --data "$T/latin1.txt" --ctx 64 -q --output-dir "$T/out-latin1" >/dev/null 2>"$T/latin1.err" &&
   grep -q "latin1.txt: not valid UTF-8 (first ill-formed byte at offset 3003)" "$T/latin1.err"; then
  echo "PASS invalid-utf8-warns: $(grep -m1 'not valid UTF-8' "$T/latin1.err")"
else
  failures=$((failures + 1)); echo "FAIL invalid-utf8-warns"; head -3 "$T/latin1.err"
fi

# The intact folder works with no extra flags, and add_bos_token puts <s> (id 299) first.
n=$((n + 1))
if "$QSWEEP" eval --model "$TOKM" --data "$TEXT" --ctx 64 -q --output-dir "$T/out-tok" >"$T/tok.stdout" 2>"$T/tok.stderr" &&
   [ -s "$T/out-tok/eval.h5" ] && /usr/bin/python3 -c "
import h5py, sys
f = h5py.File(sys.argv[1], 'r')
print(list(f.attrs.keys()))" "$T/out-tok/eval.h5" >/dev/null 2>&1; then
  echo "PASS tokenizer-json-folder: $(grep -m1 '^perplexity:' "$T/tok.stdout")"
else
  failures=$((failures + 1)); echo "FAIL tokenizer-json-folder"; head -5 "$T/tok.stderr"
fi

echo "cli_errors: $((n - failures))/$n passed"
[ "$failures" -eq 0 ]
