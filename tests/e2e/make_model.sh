#!/usr/bin/env bash
# make_model.sh — commands that write folders leave no stale or stray ones (issue 10):
# `make-model` over its own earlier output replaces it completely (a single-file model over a
# sharded one leaves no index or shards for the loader to prefer), refuses a folder with other
# files (naming them) and writes nothing when it fails (a missing --tokenizer); the loader refuses
# a folder whose model.safetensors and index disagree; `eval` and `spectrum` that fail leave no
# --output-dir behind.
#
# usage: bash make_model.sh <qsweep-binary> <source-dir> <shared-dir>   (run by ctest)
set -u

QSWEEP=${1:?usage: make_model.sh QSWEEP_BINARY SOURCE_DIR SHARED_DIR}
SRC=${2:?source dir}
TOK="$SRC/demo/kjv-llama/tokenizer.model"

T=$(mktemp -d "${TMPDIR:-/tmp}/qsweep-make-model.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

failures=0
n=0
ok() { n=$((n + 1)); echo "PASS $1"; }
bad() { n=$((n + 1)); failures=$((failures + 1)); echo "FAIL $1"; [ -f "$T/err" ] && sed 's/^/    stderr: /' "$T/err" | head -n 5; }
small=(--hidden 64 --intermediate 128 --layers 2 --heads 4 --kv-heads 2 --vocab 2048)
mm() { "$QSWEEP" make-model "${small[@]}" "$@" >/dev/null 2>"$T/err"; }
# The folder's entries, sorted, on one line.
ls1() { (cd "$1" && ls -A | sort | tr '\n' ' '); }
# Pre-tokenized text for a quick eval (ctx 32).
{ echo '#qsweep-token-ids v1'; for i in $(seq 0 199); do printf '%d\n' $(((i * 37 + 11) % 2048)); done; } >"$T/ids.txt"
ppl() { "$QSWEEP" eval --model "$1" --data "$T/ids.txt" --ctx 32 -q --output-dir "$T/ev" 2>"$T/err" | sed -n 's/^perplexity: //p'; }

# ---- make-model over its own earlier output -----------------------------------------------------
mm --output "$T/m" --shards 3 --seed 1 --tokenizer "$TOK" || bad "make-model sharded"
mm --output "$T/m" --seed 2 --tokenizer "$TOK" || bad "make-model single over sharded"
mm --output "$T/fresh" --seed 2 --tokenizer "$TOK" || bad "make-model fresh"
if [ "$(ls1 "$T/m")" = ".qsweep-make-model config.json model.safetensors tokenizer.model " ]; then
  ok "single-file model over a sharded one: no index or shards left"
else bad "files after replacing: $(ls1 "$T/m")"; fi
a=$(ppl "$T/m"); b=$(ppl "$T/fresh")
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "the replaced folder evaluates the new weights (perplexity $a, as a fresh folder)"
else bad "perplexity of the replaced folder '$a', of a fresh one '$b'"; fi
if [ -z "$(ls -A "$T" | grep '^\.')" ]; then
  ok "no temporary folders left next to the model"
else bad "temporary folders left: $(ls -A "$T")"; fi

# ---- refusals -------------------------------------------------------------------------------------
mkdir "$T/other" && echo mine >"$T/other/notes.txt"
if ! mm --output "$T/other" && grep -q '^qsweep: error:.*notes.txt' "$T/err" && [ "$(ls1 "$T/other")" = "notes.txt " ]; then
  ok "a folder with other files is refused, naming them, and left as it was"
else bad "make-model over a foreign folder"; fi
echo '{}' >"$T/m/tokenizer.json"
if ! mm --output "$T/m" && grep -q '^qsweep: error:.*tokenizer.json' "$T/err" && [ -f "$T/m/model.safetensors" ]; then
  ok "a make-model folder with a file added by hand is refused, naming it"
else bad "make-model over its output plus tokenizer.json"; fi
rm -f "$T/m/tokenizer.json"
if ! mm --output "$T/new/deeper/m" --tokenizer "$T/no-such.model" && grep -q '^qsweep: error:.*no-such.model' "$T/err" &&
   [ ! -e "$T/new" ]; then
  ok "a missing --tokenizer is an error and creates no folders"
else bad "make-model with a missing tokenizer (left: $(ls1 "$T"))"; fi
if ! mm --output "$T/m" --tokenizer "$T/no-such.model" && [ "$(ls1 "$T/m")" = ".qsweep-make-model config.json model.safetensors tokenizer.model " ] &&
   [ "$(ppl "$T/m")" = "$a" ]; then
  ok "a failed make-model over an earlier output leaves that output intact"
else bad "failed make-model over an earlier output"; fi

# ---- the loader: model.safetensors next to an index that does not list it -----------------------
mm --output "$T/both" --shards 2 --tokenizer "$TOK" || bad "make-model both"
cp "$T/fresh/model.safetensors" "$T/both/"
if ! "$QSWEEP" eval --model "$T/both" --data "$T/ids.txt" --ctx 32 -q --output-dir "$T/out-both" >/dev/null 2>"$T/err" &&
   grep '^qsweep: error:' "$T/err" | grep -F "$T/both/model.safetensors " | grep -qF "$T/both/model.safetensors.index.json"; then
  ok "model.safetensors and an index that disagree are refused, naming both"
else bad "loader with both model.safetensors and a disagreeing index"; fi

# ---- eval / spectrum that fail leave no --output-dir ----------------------------------------------
[ ! -e "$T/out-both" ] && ok "eval with a bad model creates no --output-dir" || bad "eval left $T/out-both"
if ! "$QSWEEP" eval --model "$T/fresh" --data "$T/no-such.txt" -q --output-dir "$T/ev2/sub" >/dev/null 2>"$T/err" && [ ! -e "$T/ev2" ]; then
  ok "eval with missing data creates no --output-dir (nor its parents)"
else bad "eval with missing data left $T/ev2"; fi
if ! "$QSWEEP" spectrum --model "$T/both" --no-plots -q --output-dir "$T/sp" >/dev/null 2>"$T/err" && [ ! -e "$T/sp" ]; then
  ok "spectrum with a bad model creates no --output-dir"
else bad "spectrum with a bad model left $T/sp"; fi
# A regex error is found after the model loaded, when the folder exists: it is removed again.
if ! "$QSWEEP" spectrum --model "$T/fresh" --filter-layers '(' --no-plots -q --output-dir "$T/sp2/x" >/dev/null 2>"$T/err" &&
   grep -q '^qsweep: error:' "$T/err" && [ ! -e "$T/sp2" ]; then
  ok "spectrum failing after it created --output-dir removes it"
else bad "spectrum with a bad --filter-layers left $(ls1 "$T" | tr ' ' '\n' | grep sp2)"; fi

echo "make_model: $((n - failures))/$n passed"
[ "$failures" -eq 0 ]
