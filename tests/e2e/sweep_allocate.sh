#!/usr/bin/env bash
# sweep_allocate.sh — mixed precision in a sweep (issue 14): a job with [sensitivity] and two
# [allocate.NAME] variants on the demo model. The scores are computed once (one shared/sens-*
# directory, candidates = the union the cells use, alpha included); each cell's plan.json is what
# `qsweep allocate` writes from that directory for the same budget; its quantized.h5 stores exactly
# the allocated size, never above the budget; summary.csv carries the predicted score; a strategy
# without a budget takes its natural target; a cell two variants share runs once; --resume
# reuses the scores and redoes nothing. Bad [allocate] values stop the run before any work.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
head -c 12000 "$SRC/demo/data/kjv-test.txt" >"$tmp/test.txt"
cat >"$tmp/job.ini" <<EOF2
model = $SRC/demo/kjv-llama
calib = $SRC/demo/data/kjv-train.txt
eval  = test.txt
output-dir = out

[quantize]
method  = rtn
n-calib = 8
seq-len = 64

[sensitivity]
score         = output-error, kl-probe, alpha
probe-windows = 2
probe-ctx     = 32

[allocate]
palette = 2:128 3:128 4:128 8:128

[allocate.A]
target-avg-bits = 3.1484375, 4.15625

[allocate.B]
strategy = aggressive
palette  = 2:128 3:128 4:128 3:256
score    = output-error

[eval]
ctx = 64
kl-divergence = true
EOF2
"${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" -q >"$tmp/run.out" 2>&1 || bad "run: $(tail -20 "$tmp/run.out")"
n_sens=$(ls -d "$tmp"/out/shared/sens-* 2>/dev/null | wc -l)
[ "$n_sens" = 1 ] && ok "one shared sensitivity run for every cell" || bad "sensitivity directories: $n_sens"
i=0
for cell in "$tmp"/out/cells/*/; do
  b=$(/usr/bin/python3 -c "import json,sys; a=json.load(open(sys.argv[1]))['allocation']; print(a['budget'].split()[-1], a['score'], a['candidates'])" "$cell/plan.json")
  set -- $b
  "$QS" allocate --sensitivity "$tmp"/out/shared/sens-* --target-avg-bits "$1" --score "$2" --palette "$3" --output "$tmp/ref$i.json" >/dev/null 2>&1 ||
    bad "standalone allocate for $cell"
  i=$((i + 1))
done
if /usr/bin/python3 - "$tmp/out" <<'PY'
import csv, glob, json, sys, h5py
out = sys.argv[1]
s = h5py.File(glob.glob(f"{out}/shared/sens-*/sensitivity.h5")[0])
pal = sorted(zip(s["palette/bits"][:].tolist(), s["palette/group_size"][:].tolist()))
assert pal == [(2, 128), (3, 128), (3, 256), (4, 128), (8, 128)], pal   # the union of the cells' candidates
assert s["scores/alpha"].shape == (28,) and "kl_probe" in s["scores"]
rows = list(csv.DictReader(open(f"{out}/summary.csv")))
assert len(rows) == 3, [r["label"] for r in rows]   # A: 2 budgets, B: 1 (natural target 3.0)
refs = sorted(glob.glob(f"{out}/../ref*.json"))
plans = {}
for r in rows:
    d = f"{out}/cells/{r['id']}"
    plan = json.load(open(f"{d}/plan.json"))
    al = plan["allocation"]
    q = h5py.File(f"{d}/quantized.h5")
    bits = sum(int(g.attrs["out_features"]) * int(g.attrs["in_features"]) * int(g.attrs["bits"]) +
               int(g.attrs["out_features"]) * -(-int(g.attrs["in_features"]) // int(g.attrs["group_size"])) * (16 + int(g.attrs["bits"]))
               for g in q["layers"].values())
    params = sum(int(g.attrs["out_features"]) * int(g.attrs["in_features"]) for g in q["layers"].values())
    assert bits == al["size_bits"] <= al["budget_bits"], (bits, al)
    assert al["size_bits"] >= 0.995 * al["budget_bits"], al
    assert abs(float(r["bits_per_weight"]) - bits / params) < 1e-12
    assert float(r["predicted_score"]) == al["predicted_score"], (r["predicted_score"], al["predicted_score"])
    for name, g in q["layers"].items():
        want = plan["layers"][name]
        assert (int(g.attrs["bits"]), int(g.attrs["group_size"])) == (want["bits"], want["group_size"]), name
    plans[r["label"]] = plan
b = [p for l, p in plans.items() if l == "B"][0]["allocation"]
assert b["budget"].endswith("3"), b["budget"]  # aggressive's natural target
assert b["score"] == "output-error"
# each cell's plan = what qsweep allocate writes from the same scores
ref_layers = [json.load(open(f))["layers"] for f in refs]
for p in plans.values():
    assert p["layers"] in ref_layers, "a cell's plan differs from qsweep allocate's"
print("cells:", ", ".join(f"{l}: {p['allocation']['bits_per_weight']:.4f} bits" for l, p in plans.items()))
PY
then ok "each cell's plan = qsweep allocate's; stored size = allocated size within the budget; predicted score in summary.csv"
else bad "allocated cells"; fi

# Resume: nothing recomputed, the scores reused.
before=$(stat -c %Y "$tmp"/out/shared/sens-*/sensitivity.h5 "$tmp"/out/cells/*/cell.h5)
sleep 1
"${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" --resume -q >"$tmp/resume.out" 2>&1 || bad "resume"
after=$(stat -c %Y "$tmp"/out/shared/sens-*/sensitivity.h5 "$tmp"/out/cells/*/cell.h5)
[ "$before" = "$after" ] && grep -q "3 cells: 3 done" "$tmp/resume.out" &&
  ok "resume: 3 cells skipped, the scores kept" || bad "resume: $(tail -5 "$tmp/resume.out")"

badjob() {  # badjob NAME EXPECTED SET...
  local name=$1 want=$2; shift 2
  local args=()
  for s in "$@"; do args+=(--set "$s"); done
  if "$QS" run "$tmp/job.ini" --output-dir "$tmp/bad" "${args[@]}" -q >"$tmp/o" 2>"$tmp/e"; then bad "$name accepted"
  elif grep -qF "$want" "$tmp/e" && [ ! -e "$tmp/bad" ]; then ok "$name: $(head -1 "$tmp/e")"
  else bad "$name: $(cat "$tmp/e")"; fi
}
badjob "budget below the smallest model" "below the smallest possible model" "allocate.A.target-avg-bits=1.5"
badjob "budget above the full model" "above the full model" "allocate.A.target-avg-bits=40"
badjob "negative budget" "must be positive" "allocate.A.target-avg-bits=-3"
badjob "conservative at 3 bits" "below the smallest possible model" "allocate.B.strategy=conservative" "allocate.B.palette=4:64 4:128" "allocate.B.target-avg-bits=3"
badjob "alpha as the allocation score" "alpha cannot price candidates" "allocate.B.score=alpha"
badjob "unknown [allocate] key" "not an option of qsweep allocate" "allocate.bits=3"
badjob "candidate outside [sensitivity]'s palette" "is not in [sensitivity]'s palette" "sensitivity.palette=3:128,4:128"
exit $fail
