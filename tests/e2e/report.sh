#!/usr/bin/env bash
# report.sh — `qsweep report DIR` (issue 13) on a small sweep with two evaluation files, a task
# file and the shared spectrum: report.md holds every cell, the winner table (rtn vs gptq per
# setting and dataset, with the average row and verdict) and the baselines; report.html passes
# tests/e2e/report_check.py in a real headless browser (Debian's chromium, installed by
# scripts/setup_chromium.sh, which the test command runs): self-contained, its script runs without
# errors, table#cells holds summary.csv's numbers, a header click sorts, a screenshot is written.
# Bad input: a directory that is not a finished sweep is an error and writes nothing.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  if [ -n "${CI:-}" ]; then echo "FAIL: chromium is not installed (scripts/setup_chromium.sh installs it)"; exit 1; fi
  echo "SKIP: chromium is not installed (bash scripts/setup_chromium.sh)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
head -c 20000 "$SRC/demo/data/kjv-test.txt" >"$tmp/kjv.txt"
head -c 20000 "$SRC/demo/data/licenses.txt" >"$tmp/lic.txt"
/usr/bin/python3 "$SRC/analysis/make_tasks.py" --input "$SRC/demo/data/kjv-test.txt" --out "$tmp/verses" --n 16 >/dev/null || bad "make_tasks.py"
printf '%s\n' "model = $M" "calib = $SRC/demo/data/kjv-train.txt" "eval  = kjv.txt, lic.txt" "tasks = verses.jsonl" \
  "[quantize]" "method  = rtn, gptq" "bits    = 3, 4" "n-calib = 8" "seq-len = 64" \
  "[eval]" "ctx = 128" "kl-divergence = true" "[spectrum]" "precisions = fp32" >"$tmp/job.ini"
"${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" --output-dir "$tmp/s" -q >"$tmp/run.out" 2>&1 || bad "run: $(tail -5 "$tmp/run.out")"
if "$QS" report "$tmp/s" >"$tmp/rep.out" 2>&1; then ok "qsweep report"; else bad "report: $(cat "$tmp/rep.out")"; fi
md=$tmp/s/report.md
if [ "$(grep -c '| complete |' "$md")" = 4 ] && [ "$(grep -c '^\*\*bits=[34]: rtn (A) vs gptq (B)\*\* (cells ' "$md")" = 2 ] &&
   [ "$(grep -c '^| average | ' "$md")" = 2 ] && [ "$(grep -c '^wins: rtn [0-9], gptq [0-9], ties [0-9]' "$md")" = 2 ] &&
   grep -q '^| rtn | gptq | [0-9] | [0-9] | [0-9] | ' "$md" && grep -q '^| verses | | 0\.[0-9]\{4\} |$' "$md" &&
   grep -q '^| lic | [0-9.]* | |$' "$md"; then
  ok "report.md: 4 cells, per-setting winner tables (2 datasets, average, verdict), verdicts, baselines"
else bad "report.md: $(cat "$md")"; fi
# The winner table's rows are compare's: the bits=3 pair equals `qsweep compare` of those cells, line for line.
ids=$("$QS" run "$tmp/job.ini" --output-dir "$tmp/s" --dry-run 2>/dev/null | sed -n 's/^ *[0-9]*  \([0-9a-f]\{12\}\)  .*/\1/p')
set -- $ids
"$QS" compare "$tmp/s:$1" "$tmp/s:$3" --labels rtn,gptq >"$tmp/cmp.out" 2>&1
n=0; while IFS= read -r l; do grep -qxF -- "$l" "$md" && n=$((n + 1)); done < <(grep '^| \(kjv\|lic\|average\) |' "$tmp/cmp.out")
if [ $# = 4 ] && [ $n = 3 ]; then ok "the winner table's rows equal qsweep compare's"
else bad "winner rows vs compare ($n of 3): $(cat "$tmp/cmp.out")"; fi
if /usr/bin/python3 "$SRC/tests/e2e/report_check.py" "$CHROMIUM" "$tmp/s"; then ok "report.html in headless chromium"
else bad "report.html in the browser"; fi
grep -q '<svg class="plot"' "$tmp/s/report.html" && [ "$(grep -c '<svg class="plot"' "$tmp/s/report.html")" = 5 ] &&
  grep -q 'Alpha-Hill per layer' "$tmp/s/report.html" && grep -q 'output error per layer' "$tmp/s/report.html" &&
  ok "plots: a frontier per dataset and task set, per-layer output error, spectrum" || bad "plots missing"
mkdir -p "$tmp/empty"
if "$QS" report "$tmp/empty" >"$tmp/o" 2>"$tmp/e"; then bad "report of an empty folder succeeded"
elif grep -q 'no summary.csv' "$tmp/e" && [ -z "$(ls "$tmp/empty")" ]; then ok "not a sweep: $(head -1 "$tmp/e")"
else bad "empty folder: $(cat "$tmp/e")"; fi
exit $fail
