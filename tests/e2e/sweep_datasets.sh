#!/usr/bin/env bash
# sweep_datasets.sh — a job file with several evaluation files (issue 13): the top-level
# `eval = a.txt, b.jsonl` is a list, not a grid axis; each cell and the full-precision baseline
# evaluate every file (KL included) exactly as `qsweep eval` on that file alone does;
# summary.csv gains <metric>[<dataset>] columns; a top-level `tasks = FILE` is scored by every
# cell and the baseline as `qsweep eval --tasks` scores it (acc[<tasks>] ... columns); `qsweep compare DIR:CELL DIR:CELL` reads the
# cells; a missing evaluation file stops the job before any work.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
head -c 30000 "$SRC/demo/data/kjv-test.txt" >"$tmp/kjv.txt"
/usr/bin/python3 - "$SRC/demo/data/licenses.txt" "$tmp/lic.jsonl" <<'PY'
import json, sys
docs = open(sys.argv[1]).read()[:30000].split("\n\n")
with open(sys.argv[2], "w") as f:
    for d in docs:
        f.write(json.dumps({"text": d}) + "\n")
PY
/usr/bin/python3 "$SRC/analysis/make_tasks.py" --input "$SRC/demo/data/kjv-test.txt" --out "$tmp/verses" --n 24 >/dev/null || bad "make_tasks.py"
printf '%s\n' "model = $M" "calib = $SRC/demo/data/kjv-train.txt" "eval  = kjv.txt, lic.jsonl" "tasks = verses.jsonl" \
  "[quantize]" "method  = rtn, gptq" "bits    = 3" "n-calib = 8" "seq-len = 64" \
  "[eval]" "ctx = 128" "kl-divergence = true" >"$tmp/job.ini"
"${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" --output-dir "$tmp/s" -q >"$tmp/run.out" 2>&1 || bad "run: $(tail -5 "$tmp/run.out")"
ids=$("$QS" run "$tmp/job.ini" --output-dir "$tmp/s" --dry-run 2>/dev/null | sed -n 's/^ *[0-9]*  \([0-9a-f]\{12\}\)  .*/\1/p')
set -- $ids
if [ $# = 2 ] && head -1 "$tmp/s/summary.csv" |
   grep -q 'perplexity\[kjv\],baseline_perplexity\[kjv\],kl_divergence\[kjv\],top1_agreement\[kjv\],perplexity\[lic\],baseline_perplexity\[lic\],kl_divergence\[lic\],top1_agreement\[lic\],acc\[verses\],acc_norm\[verses\],acc_llamacpp\[verses\],baseline_acc\[verses\],baseline_acc_norm\[verses\],baseline_acc_llamacpp\[verses\]'; then
  ok "2 cells; summary.csv has <metric>[<dataset>] columns for both files"
else bad "summary header: $(head -1 "$tmp/s/summary.csv"), ids '$ids'"; fi
gptq=${2:-none}
"$QS" eval --model "$M" --quantized "$tmp/s/cells/$gptq" --data "$tmp/lic.jsonl" --tasks "$tmp/verses.jsonl" --ctx 128 --kl-divergence \
  --output-dir "$tmp/alone" -q >"$tmp/alone.out" 2>&1 || bad "eval alone"
if /usr/bin/python3 - "$tmp/s/summary.csv" "$tmp/alone.out" "$gptq" <<'PY'
import csv, sys
rows = {r["id"]: r for r in csv.DictReader(open(sys.argv[1]))}
out = dict(l.rstrip("\n").split(": ", 1) for l in open(sys.argv[2]) if l.startswith(("perplexity:", "kl-divergence:")))
acc = dict(kv.split("=") for l in open(sys.argv[2]) if l.startswith("tasks ") and ": n=" in l for kv in l.split(": ", 1)[1].split())
r = rows[sys.argv[3]]
ppl, kl = float(out["perplexity"]), float(out["kl-divergence"].split()[0])
assert float(r["perplexity[lic]"]) == ppl, (r["perplexity[lic]"], ppl)
assert float(r["kl_divergence[lic]"]) == kl, (r["kl_divergence[lic]"], kl)
assert float(r["perplexity"]) == float(r["perplexity[kjv]"])
for k in ("acc", "acc_norm", "acc_llamacpp"):
    assert abs(float(r[f"{k}[verses]"]) - float(acc[k])) < 5e-7, (k, r[f"{k}[verses]"], acc[k])
    assert 0 <= float(r[f"baseline_{k}[verses]"]) <= 1
assert float(r["baseline_perplexity[lic]"]) > 0 and r["baseline_perplexity[lic]"] != r["baseline_perplexity[kjv]"]
PY
then ok "a cell's figures on the second file equal qsweep eval on that file alone (perplexity and KL, every digit; task accuracies)"
else bad "per-dataset figures differ"; fi
"$QS" compare "$tmp/s:${1:-none}" "$tmp/s:$gptq" >"$tmp/cmp.out" 2>&1
if grep -q '^| kjv |' "$tmp/cmp.out" && grep -q '^| lic |' "$tmp/cmp.out" && grep -q "^| dataset | A: ${1:-none} | B: $gptq |" "$tmp/cmp.out"; then
  ok "compare DIR:CELL DIR:CELL on the sweep: one row per file"
else bad "compare on the sweep: $(cat "$tmp/cmp.out")"; fi
"$QS" run "$tmp/job.ini" --output-dir "$tmp/s" --resume -q >"$tmp/resume.out" 2>&1 || bad "resume"
if grep -q "2 cells: 2 done" "$tmp/resume.out"; then ok "resume: nothing to redo"; else bad "resume: $(tail -3 "$tmp/resume.out")"; fi
sed 's/lic.jsonl/missing.jsonl/' "$tmp/job.ini" >"$tmp/bad.ini"
"$QS" run "$tmp/bad.ini" --output-dir "$tmp/bad" -q >"$tmp/bad.out" 2>&1; rc=$?
if [ $rc != 0 ] && grep -q "missing.jsonl: no such file" "$tmp/bad.out" && [ ! -e "$tmp/bad" ]; then ok "a missing evaluation file: error, no output"
else bad "missing file: rc $rc $(cat "$tmp/bad.out")"; fi
exit $fail
