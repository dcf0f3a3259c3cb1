#!/usr/bin/env bash
# quantize.sh — `qsweep quantize` + `qsweep eval --quantized` end to end on the bundled model:
# 1 and 2 MPI ranks write identical codes, scales, zero points, statistics and metrics (timing
# and provenance aside) and evaluate to the same perplexity and KL-divergence; bad input fails
# clearly and leaves no quantized.h5.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
M="$SRC/demo/kjv-llama"
CAL="$SRC/demo/data/kjv-test.txt"   # small text: tokenizes fast; any text calibrates
EV="$tmp/eval.ids"
"$QS" tokenize --model "$M" --data "$CAL" --output "$tmp/all.ids" >/dev/null
{ head -1 "$tmp/all.ids"; sed 1d "$tmp/all.ids" | tr ' ' '\n' | head -2600 | tr '\n' ' '; echo; } >"$EV"

for method in gptq awq; do
  args=(quantize --model "$M" --method $method --bits 3 --group-size 64 --calib "$CAL" --n-calib 12 --seq-len 128 --calib-chunk 2 -q)
  "$QS" "${args[@]}" --output-dir "$tmp/${method}1" >"$tmp/${method}1.out" 2>"$tmp/err" || { bad "$method 1 rank"; cat "$tmp/err"; }
  # Where the time went: the forward passes, the block transforms (AWQ's search), the layers'
  # quantization and error metrics, each a number; the method's own part positive (GPTQ's
  # quantization, AWQ's scale search).
  pos='[0-9.]*[1-9][0-9.]*' any='[0-9.]+'
  if [ $method = gptq ]; then tr=$any qu=$pos; else tr=$pos qu=$any; fi
  if grep -Eq "^time: forward \+ statistics $any s, block transforms $tr s \(rank 0\), quantization $qu s, error metrics $any s" "$tmp/${method}1.out"; then
    ok "$method: $(grep '^time:' "$tmp/${method}1.out")"
  else bad "$method: no time breakdown: $(cat "$tmp/${method}1.out")"; fi
  "${MPIRUN[@]}" -n 2 "$QS" "${args[@]}" --output-dir "$tmp/${method}2" >/dev/null 2>"$tmp/err" || { bad "$method 2 ranks"; cat "$tmp/err"; }
  if [ -s "$tmp/${method}1/quantized.h5" ] && /usr/bin/python3 "$SRC/tests/e2e/h5_same.py" "$tmp/${method}1/quantized.h5" "$tmp/${method}2/quantized.h5"; then
    ok "$method: 1 and 2 ranks write identical quantized.h5 (codes, scales, zeros, stats, metrics)"
  else bad "$method: quantized.h5 differs between 1 and 2 ranks"; fi
  e1=$("$QS" eval --model "$M" --data "$EV" --ctx 128 --quantized "$tmp/${method}1" --kl-divergence -q --output-dir "$tmp/${method}1" | grep -E '^(perplexity|kl-divergence|top-1)')
  e2=$("${MPIRUN[@]}" -n 2 "$QS" eval --model "$M" --data "$EV" --ctx 128 --quantized "$tmp/${method}2" --kl-divergence -q --output-dir "$tmp/${method}2" | grep -E '^(perplexity|kl-divergence|top-1)')
  if [ -n "$e1" ] && [ "$e1" = "$e2" ]; then ok "$method: eval --quantized --kl-divergence identical on 1 and 2 ranks"
  else bad "$method: eval differs: '$e1' vs '$e2'"; fi
done

# Hidden states beyond --activation-budget-mb go to a scratch file: the same bits as in memory,
# with and without propagation, on 1 and 2 ranks, and no scratch file left behind.
for prop in "" --no-propagate; do
  sargs=(quantize --model "$M" --method gptq --bits 4 --group-size 64 --calib "$CAL" --n-calib 24 --seq-len 128 --calib-chunk 2 $prop)
  rm -rf "$tmp/spill1" "$tmp/spill2"
  "$QS" "${sargs[@]}" --activation-budget-mb 1 --output-dir "$tmp/spill1" >/dev/null 2>"$tmp/spill.err" || { bad "spilled quantize $prop"; cat "$tmp/spill.err"; }
  "${MPIRUN[@]}" -n 2 "$QS" "${sargs[@]}" -q --output-dir "$tmp/spill2" >/dev/null 2>&1 || bad "in-memory quantize $prop"
  if grep -q "exceed --activation-budget-mb 1: kept in a scratch file in $tmp/spill1" "$tmp/spill.err" &&
     [ -s "$tmp/spill1/quantized.h5" ] &&
     /usr/bin/python3 "$SRC/tests/e2e/h5_same.py" "$tmp/spill1/quantized.h5" "$tmp/spill2/quantized.h5" &&
     [ "$(ls "$tmp/spill1")" = "quantized.h5" ]; then
    ok "activations spilled to a scratch file (1 rank) give the same quantized.h5 as in memory (2 ranks) ${prop:-with propagation}; nothing left behind"
  else bad "spilled activations ${prop}: $(grep -i activations "$tmp/spill.err"; ls "$tmp/spill1")"; fi
done
if "$QS" quantize --model "$M" --method rtn --calib "$CAL" --n-calib 24 --seq-len 128 --activation-budget-mb 1 \
     --scratch-dir "$tmp/no/such/dir" --output-dir "$tmp/spill3" -q >/dev/null 2>"$tmp/err"; then
  bad "a missing --scratch-dir was accepted"
elif grep -q "no/such/dir.*cannot create the activation scratch file" "$tmp/err" && [ ! -e "$tmp/spill3/quantized.h5" ]; then
  ok "a missing --scratch-dir: clear error, no quantized.h5"
else bad "missing --scratch-dir: $(cat "$tmp/err")"; fi

# The statistics pass alone: identical stats.h5 on 1 and 2 ranks.
cargs=(calibrate --model "$M" --calib "$CAL" --n-calib 12 --seq-len 128 --calib-chunk 2 -q)
"$QS" "${cargs[@]}" --output-dir "$tmp/cal1" >/dev/null 2>&1 || bad "calibrate 1 rank"
"${MPIRUN[@]}" -n 2 "$QS" "${cargs[@]}" --output-dir "$tmp/cal2" >/dev/null 2>&1 || bad "calibrate 2 ranks"
if [ -s "$tmp/cal1/stats.h5" ] && /usr/bin/python3 "$SRC/tests/e2e/h5_same.py" "$tmp/cal1/stats.h5" "$tmp/cal2/stats.h5"; then
  ok "calibrate: identical stats.h5 on 1 and 2 ranks"
else bad "calibrate: stats.h5 differs"; fi

# Bad input: a clear error, non-zero exit, no quantized.h5.
printf '' >"$tmp/empty.txt"
printf 'In the beginning\n' >"$tmp/short.txt"
check() {  # name needle args...
  local name=$1 needle=$2; shift 2
  local out rc; out=$("$QS" quantize --model "$M" --output-dir "$tmp/bad_$name" -q "$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -q "^qsweep: error:.*$needle" <<<"$out" && [ ! -e "$tmp/bad_$name/quantized.h5" ]; then ok "error: $name"
  else bad "no clean error for $name (rc $rc): $out"; fi
}
check bits-9 "bits 9 out of range" --method rtn --bits 9 --calib "$CAL"
check group-0 "group size 0 must be positive" --method rtn --group-size 0 --calib "$CAL"
mkdir -p "$tmp/calib-dir"
check calib-directory "calib-dir: is a directory, not a data file" --method rtn --calib "$tmp/calib-dir"
check empty-calib "empty.txt" --method gptq --calib "$tmp/empty.txt"
check short-calib "short.txt" --method gptq --calib "$tmp/short.txt"
check bad-method "hqq" --method hqq --calib "$CAL"
exit $fail
