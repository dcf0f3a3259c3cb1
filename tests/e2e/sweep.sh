#!/usr/bin/env bash
# sweep.sh — `qsweep run` end to end with real MPI ranks on the bundled model: the grid runs and
# assembles sweep.h5/summary.csv; one group of 2 ranks and two groups of 1 rank (cells running
# concurrently) give identical results; the shared KL reference equals `qsweep eval
# --kl-divergence` run side by side; a run killed with SIGKILL at a random moment, and a run
# stopped by SIGUSR1 or SIGTERM (exit 75), resume to results identical to the uninterrupted run; a cell
# with a non-finite result is recorded as failed while the others complete, the run exits 1
# naming it, and a resume redoes it; bad job files fail before any work with the file and key.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'pkill -9 -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
M="$SRC/demo/kjv-llama"
source "$SRC/tests/e2e/lib/small_data.sh"
small_data "$QS" "$SRC" "$tmp" || { echo "FAIL: test data"; exit 1; }
EV="$tmp/eval.ids"

run() {  # dir extra-args... ; runs the job on 2 ranks
  local d=$1; shift
  "${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" --output-dir "$d" -q "$@" >"$d.out" 2>"$d.err"
}

# 1. The grid, and its outputs.
run "$tmp/a"; rc=$?
if [ $rc -eq 0 ] && [ -s "$tmp/a/sweep.h5" ] && [ "$(wc -l <"$tmp/a/summary.csv")" -eq 5 ] &&
   grep -q "4 cells: 4 done" "$tmp/a.out"; then ok "4-cell grid on 2 ranks: sweep.h5, summary.csv, status"
else bad "grid run (rc $rc)"; cat "$tmp/a.err"; fi
/usr/bin/python3 - "$tmp/a" <<'EOF' && ok "sweep.h5: cells in grid order with params, metrics, codes; summary.csv columns" || bad "sweep.h5 layout"
import csv, sys, h5py, math
d = sys.argv[1]
f = h5py.File(d + "/sweep.h5", "r")
assert f.attrs["complete"] == 1 and f.attrs["n_cells"] == 4
names = list(f["cells"])
assert [n.split("-")[0] for n in names] == ["0000", "0001", "0002", "0003"], names
labels = [f["cells"][n].attrs["label"].decode() for n in names]
assert labels == ["method=rtn bits=3", "method=rtn bits=4", "method=gptq bits=3", "method=gptq bits=4"], labels
for n in names:
    g = f["cells"][n]
    assert g.attrs["status"] == b"complete"
    assert g["params"].attrs["quantize.bits"].decode() in ("3", "4")
    assert "codes" in g["quantized/layers/model.layers.0.self_attn.q_proj"]
    assert math.isfinite(g.attrs["perplexity"]) and g.attrs["kl_divergence"] > 0
    assert g.attrs["perplexity"] == g["eval"].attrs["perplexity"]
rows = list(csv.DictReader(open(d + "/summary.csv")))
assert [r["status"] for r in rows] == ["complete"] * 4
for r in rows:
    for k in ("perplexity", "baseline_perplexity", "kl_divergence", "bits_per_weight", "model_bytes", "seconds", "quantize.method"):
        assert r[k] != "", k
# 4 bits beats 3 bits for both methods, GPTQ's KL below RTN's at 3 bits
p = {r["label"]: float(r["kl_divergence"]) for r in rows}
assert p["method=rtn bits=4"] < p["method=rtn bits=3"] and p["method=gptq bits=4"] < p["method=gptq bits=3"]
assert p["method=gptq bits=3"] < p["method=rtn bits=3"]
EOF
[ "$(grep -c '| complete |' "$tmp/a/report.md")" -eq 4 ] && grep -q '<svg class="plot"' "$tmp/a/report.html" &&
  ok "run wrote report.md (4 cells) and report.html" || bad "run's report: $(ls "$tmp/a")"
"$QS" status "$tmp/a" --csv >"$tmp/status.csv"
if [ "$(head -1 "$tmp/status.csv")" = "index,id,label,state,seconds,perplexity,error" ] && [ "$(grep -c ',done,' "$tmp/status.csv")" -eq 4 ]; then
  ok "status --csv"; else bad "status --csv"; cat "$tmp/status.csv"; fi

# 2. Two concurrent groups of 1 rank give the same results as one group of 2.
run "$tmp/b" --ranks-per-cell 1 || bad "--ranks-per-cell 1 run"
if "$QS" diff "$tmp/a" "$tmp/b" >"$tmp/diff.out"; then ok "1 group x 2 ranks == 2 groups x 1 rank (qsweep diff)"
else bad "groups differ"; head "$tmp/diff.out"; fi
"$QS" diff -q "$tmp/a/cells/$(sed -n 2p "$tmp/status.csv" | cut -d, -f2)/cell.h5" "$tmp/a/cells/$(sed -n 3p "$tmp/status.csv" | cut -d, -f2)/cell.h5"
[ $? -eq 1 ] && ok "qsweep diff reports different cells as different" || bad "diff cannot tell two cells apart"
"$QS" diff -q "$tmp/a" "$tmp/no-such-dir" 2>/dev/null
[ $? -eq 2 ] && ok "qsweep diff exits 2 when a side cannot be read" || bad "diff: an unreadable side must exit 2"

# 3. The shared full-precision hidden states give the KL of a side-by-side evaluation, bit for bit.
id2=$(sed -n 3p "$tmp/status.csv" | cut -d, -f2)
(cd "$tmp/a" && "$QS" eval --model "$M" --data "$EV" --ctx 128 --quantized "cells/$id2" --kl-divergence -q --output-dir "$tmp/side" >/dev/null)
if "$QS" diff "$tmp/side/eval.h5" "$tmp/a/cells/$id2/eval.h5" >"$tmp/diff.out"; then
  ok "KL from the shared reference == eval --kl-divergence side by side (eval.h5 identical)"
else bad "shared-reference KL differs"; cat "$tmp/diff.out"; fi

# 4. SIGKILL at a random moment, then --resume: identical to the uninterrupted run.
t=$(( (RANDOM % 60) + 5 ))  # tenths of a second into the run
echo "killing the run after $((t / 10)).$((t % 10)) s"
run "$tmp/k" & pid=$!
sleep "$((t / 10)).$((t % 10))"
pkill -9 -f "run $tmp/job.ini --output-dir $tmp/k" ; pkill -9 -P $pid mpirun 2>/dev/null; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
sleep 0.5
"$QS" status "$tmp/k" 2>/dev/null | tail -1
run "$tmp/k" --resume; rc=$?
if [ $rc -eq 0 ] && "$QS" diff "$tmp/a" "$tmp/k" >"$tmp/diff.out" && [ -z "$(find "$tmp/k" -name '*.tmp.*')" ]; then
  ok "SIGKILL at $((t / 10)).$((t % 10)) s + --resume == uninterrupted (no temporary files left)"
else bad "resume after SIGKILL (rc $rc)"; cat "$tmp/k.err" "$tmp/diff.out"; fi

# 5. SIGUSR1 (Slurm's warning signal) while a cell runs: exit 75, resume, identical.
run "$tmp/u" & pid=$!
for _ in $(seq 1 200); do ls "$tmp/u/cells/"*/started >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
pkill -USR1 -x -P $pid mpirun || kill -USR1 $pid  # this test's mpirun only, never other jobs' mpiruns
wait $pid; rc=$?
st=$("$QS" status "$tmp/u" | tail -1)
if [ $rc -eq 75 ] && [ ! -e "$tmp/u/sweep.h5" ] && grep -q "stopped by signal 10" "$tmp/u.err"; then ok "SIGUSR1: exit 75, no sweep.h5 ($st)"
else bad "SIGUSR1 gave rc $rc"; cat "$tmp/u.err"; fi
run "$tmp/u" --resume && "$QS" diff -q "$tmp/a" "$tmp/u" && ok "SIGUSR1 + --resume == uninterrupted" || bad "resume after SIGUSR1"

# SIGTERM (what Slurm sends at preemption) to a single-process run: the same clean stop.
"$QS" run "$tmp/job.ini" --output-dir "$tmp/t" -q >"$tmp/t.out" 2>"$tmp/t.err" & pid=$!
for _ in $(seq 1 200); do ls "$tmp/t/cells/"*/started >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.3
kill -TERM $pid
wait $pid; rc=$?
if [ $rc -eq 75 ] && grep -q "stopped by signal 15" "$tmp/t.err"; then ok "SIGTERM: exit 75"
else bad "SIGTERM gave rc $rc"; cat "$tmp/t.err"; fi
"$QS" run "$tmp/job.ini" --output-dir "$tmp/t" -q --resume >/dev/null 2>&1 && "$QS" diff -q "$tmp/a" "$tmp/t" &&
  ok "SIGTERM + --resume on 1 rank == 2-rank uninterrupted run" || bad "resume after SIGTERM"

# 6. A cell with a non-finite result fails alone; the run exits 1 naming it; resume redoes it.
QSWEEP_TEST_POISON_CELL=$id2 run "$tmp/f"; rc=$?
if [ $rc -eq 1 ] && grep -q "1 cell(s) failed" "$tmp/f.err" && grep -q "$id2.*non-finite activations in block 0, layer model.layers.0.self_attn.q_proj" "$tmp/f.err" &&
   [ "$(grep -c ',complete,' "$tmp/f/summary.csv")" -eq 3 ] && grep -q "$id2.*,failed,.*non-finite" "$tmp/f/summary.csv"; then
  ok "failed cell recorded (summary.csv, sweep.h5), other cells complete, exit 1 naming it"
else bad "failed cell handling (rc $rc)"; cat "$tmp/f.err"; fi
/usr/bin/python3 -c "
import h5py,sys; f=h5py.File('$tmp/f/sweep.h5','r')
g=[f['cells'][n] for n in f['cells'] if n.endswith('$id2')][0]
sys.exit(0 if g.attrs['status']==b'failed' and b'non-finite' in g.attrs['error'] and f.attrs['n_failed']==1 else 1)" &&
  ok "sweep.h5 holds the failed cell's status and error" || bad "sweep.h5 failed cell"
run "$tmp/f" --resume && "$QS" diff -q "$tmp/a" "$tmp/f" && ok "resume redoes the failed cell: identical" || bad "resume after failure"

# 7. --no-propagate cells share one copy of the full-precision statistics: identical results to
#    each cell computing its own (--stats-cache-mb 0), and fewer calibration passes.
np=(--set quantize.no-propagate=true --set quantize.method=rtn,awq,gptq --set quantize.bits=3 --set eval.kl-divergence=false)
"$QS" run "$tmp/job.ini" --output-dir "$tmp/np1" "${np[@]}" >/dev/null 2>"$tmp/np1.err" || bad "no-propagate run"
"$QS" run "$tmp/job.ini" --output-dir "$tmp/np2" "${np[@]}" -q --stats-cache-mb 0 >/dev/null 2>&1 || bad "no-propagate run without cache"
"$QS" diff -q "$tmp/np1" "$tmp/np2" && [ "$(grep -c 'no calibration forward pass' "$tmp/np1.err")" -eq 2 ] &&
  ok "--no-propagate cells reuse the shared statistics (one calibration pass for 3 cells), results identical" ||
  { bad "no-propagate statistics cache"; cat "$tmp/np1.err"; }

# 8. --set and --dry-run; a mis-launched Slurm job.
n=$("$QS" run "$tmp/job.ini" --set quantize.bits=2,3,4 --set quantize.method=awq --dry-run | grep -c 'method=\|bits=')
[ "$n" -eq 3 ] && ok "--set overrides axes (3 cells)" || bad "--set gave $n cells"
out=$(SLURM_JOB_ID=1 SLURM_NTASKS=2 "$QS" run "$tmp/job.ini" --dry-run 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "Slurm started 2 tasks but this MPI world has 1" <<<"$out" && ok "SLURM_NTASKS != world size: clear error" || bad "slurm check: $out"

# 9. Bad job files: clear error naming the file and key, non-zero exit, no output directory.
check() {  # name needle job-text
  printf '%s\n' "$3" >"$tmp/bad_$1.ini"
  local out rc; out=$("$QS" run "$tmp/bad_$1.ini" --output-dir "$tmp/bad_$1" -q 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -q "^qsweep: error: $tmp/bad_$1.ini.*$2" <<<"$out" && [ ! -e "$tmp/bad_$1" ]; then ok "job error: $1"
  else bad "no clean error for $1 (rc $rc): $out"; fi
}
H="model = $M
calib = calib.ids
eval = eval.ids"
check unknown-key "\[quantize\] bitz: not an option of qsweep quantize" "$H
[quantize]
method = rtn
bitz = 3"
check bad-value "bits.*invalid" "$H
[quantize]
method = rtn
bits = three"
check bits-range "cell bits=3 bits=9.*bits 9 out of range\|cell.*bits=9.*out of range" "$H
[quantize]
method = rtn
bits = 3, 9"
check group "group size 0 must be positive" "$H
[quantize]
method = rtn
group-size = 0"
check method "hqq" "$H
[quantize]
method = rtn, hqq"
check section "unknown section \[quant\]" "$H
[quant]
method = rtn"
check top "unknown top-level key 'bits'" "$H
bits = 3"
check path-in-section "paths are shared by every cell" "$H
[quantize]
method = rtn
calib = x.txt"
check switch "kl-divergence = maybe: expected true or false" "$H
[quantize]
method = rtn
[eval]
kl-divergence = maybe"
check no-model "no 'model'" "[quantize]
method = rtn"
check twice "method is set twice" "$H
[quantize]
method = rtn
method = gptq"
check missing-eval "eval = .*nothere.txt: no such file" "model = $M
calib = calib.ids
eval = nothere.txt
[quantize]
method = rtn"
exit $fail
