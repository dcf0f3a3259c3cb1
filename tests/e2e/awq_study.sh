#!/usr/bin/env bash
# awq_study.sh — issue 15's study as a job, small: the four methods as [quantize.NAME] variants
# (AWQ L2, + greedy, + greedy-exact, Robust-PRAQ) in one sweep on 2 ranks over the demo model at
# W3 g128; the report compares the variants like methods (a winner row per pair and dataset);
# every cell records its own settings; analysis/awq_study_plots.py draws its three figures.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
head -c 8000 "$SRC/demo/data/kjv-test.txt" >"$tmp/test.txt"
head -c 8000 "$SRC/demo/data/alice.txt" >"$tmp/alice.txt"
cat >"$tmp/job.ini" <<EOF2
model = $SRC/demo/kjv-llama
calib = $SRC/demo/data/kjv-train.txt
eval  = test.txt, alice.txt
output-dir = out
[quantize]
method = awq
bits = 3
n-calib = 8
seq-len = 64
[quantize.awq]
awq-salience = l2
[quantize.greedy]
refine = greedy
[quantize.exact]
refine = greedy-exact
[quantize.praq]
awq-salience = praq
noise-std = 0.01
[eval]
ctx = 64
kl-divergence = true
EOF2
"${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" -q >"$tmp/run.out" 2>&1 || bad "run: $(tail -5 "$tmp/run.out")"
if /usr/bin/python3 - "$tmp/out" <<'PY'
import csv, sys, h5py
out = sys.argv[1]
rows = {r["quantize.variant"]: r for r in csv.DictReader(open(f"{out}/summary.csv"))}
assert sorted(rows) == ["awq", "exact", "greedy", "praq"], sorted(rows)
txt = lambda v: v.decode() if isinstance(v, bytes) else str(v)
want = {"awq": ("none", "l2"), "greedy": ("greedy", "l2"), "exact": ("greedy-exact", "l2"), "praq": ("none", "praq")}
for v, r in rows.items():
    f = h5py.File(f"{out}/cells/{r['id']}/quantized.h5")
    assert (txt(f.attrs["refine"]), txt(f.attrs["awq_salience"])) == want[v], (v, f.attrs["refine"], f.attrs["awq_salience"])
    assert r["status"] == "complete"
md = open(f"{out}/report.md").read()
for a, b in (("awq", "greedy"), ("awq", "exact"), ("awq", "praq")):
    assert f"**all: {a} (A) vs {b} (B)**" in md, (a, b)
print("4 variants complete; report pairs them")
PY
then ok "four methods in one sweep, each with its own settings; report winner tables by variant"; else bad "study sweep"; fi
/usr/bin/python3 "$SRC/analysis/awq_study_plots.py" "$tmp/out" --bits 3 >"$tmp/plots.out" 2>&1 &&
  [ -s "$tmp/out/importance.png" ] && [ -s "$tmp/out/rounding.png" ] && [ -s "$tmp/out/alpha.png" ] &&
  ok "awq_study_plots.py: $(grep -c Spearman "$tmp/plots.out") blocks compared, three figures" || bad "plots: $(cat "$tmp/plots.out")"
exit $fail
