#!/usr/bin/env bash
# sweep_demo.sh — the issue's bar for the sweep runner, measured: the demo grid (jobs/demo.ini,
# 12 cells) with `mpirun -n 2`, uninterrupted; then again killed with SIGKILL at a random moment
# and resumed with --resume; prints both wall times and whether `qsweep diff` finds the two
# sweep.h5 identical. Usage: bench/sweep_demo.sh [build/qsweep] [results/bench-sweep]
set -u
cd "$(dirname "$0")/.."
QS=$(realpath "${1:-build/qsweep}")
OUT=${2:-results/bench-sweep}
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none -n 2)
rm -rf "$OUT"; mkdir -p "$OUT"
t0=$(date +%s.%N)
"${MPIRUN[@]}" "$QS" run jobs/demo.ini --output-dir "$OUT/full" -q >"$OUT/full.log" 2>&1 || { echo "full run failed"; cat "$OUT/full.log"; exit 1; }
t1=$(date +%s.%N)
full=$(echo "$t1 - $t0" | bc)
kill_at=$(( RANDOM % ${full%.*} + 1 ))
echo "uninterrupted: $full s; next run is killed (SIGKILL, all ranks and mpirun) after $kill_at s"
t0=$(date +%s.%N)
"${MPIRUN[@]}" "$QS" run jobs/demo.ini --output-dir "$OUT/killed" -q >"$OUT/killed.log" 2>&1 &
pid=$!
sleep "$kill_at"
pkill -9 -f "run jobs/demo.ini --output-dir $OUT/killed"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
"$QS" status "$OUT/killed" | tail -1
"${MPIRUN[@]}" "$QS" run jobs/demo.ini --output-dir "$OUT/killed" --resume -q >"$OUT/resume.log" 2>&1 || { echo "resume failed"; cat "$OUT/resume.log"; exit 1; }
t1=$(date +%s.%N)
echo "killed at $kill_at s + resumed: $(echo "$t1 - $t0" | bc) s in all"
"$QS" diff "$OUT/full" "$OUT/killed"
cat "$OUT/full/summary.csv" | cut -d, -f3,27-36 | column -t -s,
