#!/usr/bin/env bash
# compare.sh — several evaluation data files and `qsweep compare` (issue 13): `eval --data
# a,b.jsonl` gives each file's results bit-identical to a run on that file alone, on 1 and 2 ranks;
# JSON Lines documents are joined with "\n\n"; `compare` (table and CSV, eval.h5 files, folders
# and DIR:CELL_ID) agrees with SciPy (tests/e2e/compare_ref.py); bad JSONL lines and mismatched
# evaluations are clear errors with no output.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
K="$tmp/kjv-test.txt"  # the first 80 kB (the dataset keeps the file's name): enough windows for the statistics
head -c 80000 "$SRC/demo/data/kjv-test.txt" >"$K"
head -c 40000 "$SRC/demo/data/licenses.txt" > "$tmp/lic.txt"
/usr/bin/python3 - "$tmp/lic.txt" "$tmp/lic.jsonl" <<'PY'
import json, sys
docs = open(sys.argv[1]).read().split("\n\n")
with open(sys.argv[2], "w") as f:
    for d in docs:
        f.write(json.dumps({"text": d, "id": len(d)}) + "\n")
PY
ppl() { grep '^perplexity' "$1" | sed -n "${2}p"; }

"$QS" quantize --model "$M" --calib "$SRC/demo/data/kjv-train.txt" --method rtn --bits 3 --n-calib 16 --seq-len 128 --output-dir "$tmp/q-rtn" -q >/dev/null || bad "quantize rtn"
"$QS" quantize --model "$M" --calib "$SRC/demo/data/kjv-train.txt" --method gptq --bits 3 --n-calib 16 --seq-len 128 --output-dir "$tmp/q-gptq" -q >/dev/null || bad "quantize gptq"
for m in rtn gptq; do
  "$QS" eval --model "$M" --quantized "$tmp/q-$m" --data "$K,$tmp/lic.jsonl" --ctx 128 --output-dir "$tmp/$m" >"$tmp/$m.out" 2>"$tmp/$m.err" || bad "eval $m"
done
"$QS" eval --model "$M" --quantized "$tmp/q-gptq" --data "$K" --ctx 128 --output-dir "$tmp/alone-k" >"$tmp/alone-k.out" 2>&1 || bad "eval alone"
"$QS" eval --model "$M" --quantized "$tmp/q-gptq" --data "$tmp/lic.txt" --ctx 128 --output-dir "$tmp/alone-l" >"$tmp/alone-l.out" 2>&1 || bad "eval alone 2"
"${MPIRUN[@]}" -n 2 "$QS" eval --model "$M" --quantized "$tmp/q-gptq" --data "$K,$tmp/lic.jsonl" --ctx 128 --output-dir "$tmp/r2" >"$tmp/r2.out" 2>"$tmp/r2.err" || bad "eval 2 ranks"
if [ "$(grep -c '^data ' "$tmp/gptq.out")" = 2 ] && [ -n "$(ppl "$tmp/gptq.out" 1)" ] &&
   [ "$(ppl "$tmp/gptq.out" 1)" = "$(ppl "$tmp/alone-k.out" 1)" ] && [ "$(ppl "$tmp/gptq.out" 2)" = "$(ppl "$tmp/alone-l.out" 1)" ] &&
   [ "$(grep -v '^forward' "$tmp/r2.out" | grep '^perplexity\|^data\|^tokens\|^windows')" = "$(grep '^perplexity\|^data\|^tokens\|^windows' "$tmp/gptq.out")" ]; then
  ok "two data files: each perplexity equals its file alone (the JSONL's too: documents joined with a blank line), 1 == 2 ranks"
else bad "several files: $(grep '^perplexity\|^data' "$tmp/gptq.out" "$tmp/alone-k.out" "$tmp/alone-l.out" "$tmp/r2.out")"; fi
if /usr/bin/python3 - "$tmp/gptq/eval.h5" "$tmp/alone-k/eval.h5" <<'PY'
import sys, h5py, numpy as np
m, a = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
g = m["datasets/kjv-test"]
assert g.attrs["perplexity"] == a.attrs["perplexity"] == m.attrs["perplexity"]
assert np.array_equal(g["windows/nll_sum"][...], a["windows/nll_sum"][...])
assert np.array_equal(m["windows/nll_sum"][...], a["windows/nll_sum"][...])
assert "lic" in m["datasets"] and m.attrs["datasets"] in ("kjv-test,lic", b"kjv-test,lic")
PY
then ok "eval.h5: /datasets/<name> per file, the root holds the first file's results"
else bad "eval.h5 layout"; fi

"$QS" compare "$tmp/rtn" "$tmp/gptq" >"$tmp/table.txt" 2>&1 || bad "compare"
"$QS" compare "$tmp/rtn/eval.h5" "$tmp/gptq/eval.h5" --csv >"$tmp/c.csv" 2>&1 || bad "compare --csv"
if grep -q '^| dataset | A: rtn | B: gptq | Δ% | 95% CI of Δ% | p (sign) | winner |' "$tmp/table.txt" &&
   grep -q '^| kjv-test |' "$tmp/table.txt" && grep -q '^| lic |' "$tmp/table.txt" && grep -q '^| average |' "$tmp/table.txt" &&
   grep -q '^wins: rtn [0-9], gptq [0-9], ties [0-9]' "$tmp/table.txt" &&
   /usr/bin/python3 "$SRC/tests/e2e/compare_ref.py" "$tmp/rtn/eval.h5" "$tmp/gptq/eval.h5" "$tmp/c.csv" rtn gptq >"$tmp/ref.txt"; then
  ok "compare: table rows, average, wins; every figure equals SciPy's: $(tr '\n' ' ' <"$tmp/ref.txt")"
else bad "compare: $(cat "$tmp/table.txt" "$tmp/ref.txt" 2>/dev/null)"; fi

# DIR:CELL_ID addresses a sweep cell's eval.h5.
mkdir -p "$tmp/sweep/cells/abc123" && cp "$tmp/gptq/eval.h5" "$tmp/sweep/cells/abc123/"
"$QS" compare "$tmp/rtn" "$tmp/sweep:abc123" --csv >"$tmp/c2.csv" 2>&1
if [ "$(tail -n +2 "$tmp/c2.csv" | cut -d, -f1-7)" = "$(tail -n +2 "$tmp/c.csv" | cut -d, -f1-7)" ]; then ok "compare DIR:CELL_ID"
else bad "DIR:CELL_ID: $(cat "$tmp/c2.csv")"; fi

# Errors: windows that differ, a missing cell, bad JSON Lines — clear, non-zero, no output.
"$QS" eval --model "$M" --quantized "$tmp/q-gptq" --data "$K,$tmp/lic.jsonl" --ctx 64 --output-dir "$tmp/ctx64" >/dev/null 2>&1
expect_err() {  # name, pattern, command...
  local name=$1 pat=$2; shift 2
  "$@" >"$tmp/err.out" 2>&1; local rc=$?
  if [ $rc != 0 ] && grep -q "$pat" "$tmp/err.out"; then ok "$name"; else bad "$name: rc $rc, $(head -3 "$tmp/err.out")"; fi
}
expect_err "compare: different --ctx is refused" "did not score the same windows" "$QS" compare "$tmp/rtn" "$tmp/ctx64"
expect_err "compare: a missing cell" "has no evaluated cell nope" "$QS" compare "$tmp/rtn" "$tmp/sweep:nope"
expect_err "compare: not an eval file" "not a qsweep eval.h5" "$QS" compare "$tmp/rtn" "$tmp/q-rtn/quantized.h5"
printf '{"text": "In the beginning"}\n{"text": oops}\n' >"$tmp/bad1.jsonl"
printf '{"text": "a"}\n\n{"title": "b"}\n' >"$tmp/bad2.jsonl"
printf '{"text": 5}\n' >"$tmp/bad3.jsonl"
printf '["text"]\n' >"$tmp/bad4.jsonl"
for i in 1 2 3 4; do
  pat=("" "bad1.jsonl:2: not a JSON object" "bad2.jsonl:3: the object has no \"text\" field" "bad3.jsonl:1: \"text\" is a number" "bad4.jsonl:1: expected a JSON object")
  expect_err "bad JSON Lines $i: ${pat[$i]}" "${pat[$i]}" "$QS" eval --model "$M" --data "$K,$tmp/bad$i.jsonl" --ctx 64 --output-dir "$tmp/bad$i"
  [ ! -e "$tmp/bad$i" ] || bad "bad JSON Lines $i left $tmp/bad$i"
done
cp "$K" "$tmp/kjv-test.jsonl"
expect_err "two data files with one name" "have the same name 'kjv-test'" "$QS" eval --model "$M" --data "$K,$tmp/kjv-test.jsonl" --ctx 64 --output-dir "$tmp/dup"
head -c 300 "$SRC/demo/data/licenses.txt" >"$tmp/short.txt"
expect_err "a file shorter than one window, second in the list: error naming it, no output" "short.txt: has [0-9]* tokens (special tokens included), fewer than one window" "$QS" eval --model "$M" --data "$K,$tmp/short.txt" --ctx 256 --output-dir "$tmp/short"
[ ! -e "$tmp/short" ] || bad "the short file left $tmp/short"
expect_err "an empty entry in --data" "an empty entry" "$QS" eval --model "$M" --data "$K,,$K" --ctx 64 --output-dir "$tmp/empty"
exit $fail
