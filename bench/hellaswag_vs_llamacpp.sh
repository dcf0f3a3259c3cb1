#!/usr/bin/env bash
# hellaswag_vs_llamacpp.sh — qsweep's llama.cpp-variant multiple-choice accuracy against
# `llama-perplexity --hellaswag` on the same HellaSwag-format file and the same weights (SmolLM2
# F32 GGUF), task for task, and both tools' wall time, in one run on this machine.
#  - tasks: analysis/make_tasks.py on kjv-test (N tasks, default 400, verse completion, 4 endings);
#  - llama.cpp visits the tasks in a random order (mt19937 seeded 1): bench/hellaswag_order.cc
#    reproduces it, and each task's result is read from the step of its running accuracy;
#  - qsweep: eval --tasks FILE --tasks-format hellaswag (one rank, 2 threads), eval.h5's
#    pred_llamacpp against gold per task.
# Prints both accuracies, the tasks on which the two disagree, and the times (ROUNDS rounds,
# alternating, medians).
# llama.cpp is not part of qsweep: build it beside the project and set LLAMA_BIN (see vs_llamacpp.sh).
#   LLAMA_BIN=/path/to/llama.cpp/build/bin bash bench/hellaswag_vs_llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BIN:?set LLAMA_BIN to a llama.cpp build/bin folder}"
QS=${QS:-$PWD/build/qsweep}
OUT=${OUT:-$PWD/results/hellaswag-vs-llamacpp}
SH=${QSWEEP_SHARED_DIR:-$PWD/../shared}
N=${N:-400}
ROUNDS=${ROUNDS:-3}
GGUF=${GGUF:-$PWD/results/vs-llamacpp/smollm2-f32.gguf}
M=$PWD/build/models/smollm2
mkdir -p "$OUT"
export OMP_NUM_THREADS=2
bash "$SH/models/smollm2/make.sh" "$M" >/dev/null
[ -s "$GGUF" ] || bash "$SH/models/smollm2/make.sh" "$OUT/smollm2-tmp" --gguf-f32 "$GGUF" >/dev/null
rm -rf "$OUT/smollm2-tmp"
/usr/bin/python3 analysis/make_tasks.py --input "$SH/data/kjv-test.txt" --out "$OUT/tasks" --n "$N" >/dev/null
g++ -O2 -o "$OUT/order" bench/hellaswag_order.cc
"$OUT/order" "$N" >"$OUT/order.txt"

times_q=() times_l=()
for r in $(seq "$ROUNDS"); do
  a=$(date +%s.%N)
  "$QS" eval --model "$M" --tasks "$OUT/tasks.hellaswag.txt" --tasks-format hellaswag --ctx 512 --threads 2 -q \
    --output-dir "$OUT/q" >"$OUT/q.out" 2>&1
  b=$(date +%s.%N); times_q+=("$(echo "$b - $a" | bc)")
  a=$(date +%s.%N)
  "$LLAMA_BIN/llama-perplexity" -m "$GGUF" -f "$OUT/tasks.hellaswag.txt" --hellaswag --hellaswag-tasks "$N" \
    -c 2048 -b 2048 -t 2 >"$OUT/l.out" 2>&1
  b=$(date +%s.%N); times_l+=("$(echo "$b - $a" | bc)")
done
/usr/bin/python3 - "$OUT" "$N" "${times_q[*]}" "${times_l[*]}" <<'PY'
import re, statistics, sys, h5py
out, n = sys.argv[1], int(sys.argv[2])
tq = [float(x) for x in sys.argv[3].split()]
tl = [float(x) for x in sys.argv[4].split()]
order = [int(l) for l in open(f"{out}/order.txt")]
steps = [float(m.group(2)) for m in re.finditer(r"^(\d+)\t([0-9.]+)$", open(f"{out}/l.out").read(), re.M)]
assert len(steps) == n, f"llama.cpp printed {len(steps)} task lines, expected {n}"
llama = [None] * n
prev = 0
for i, acc in enumerate(steps):
    hits = round(acc * (i + 1) / 100)
    llama[order[i]] = hits > prev
    prev = hits
g = h5py.File(f"{out}/q/eval.h5")["tasks/tasks.hellaswag"]
qs = [int(p) == int(t) for p, t in zip(g["pred_llamacpp"][:], g["gold"][:])]
diff = [i + 1 for i in range(n) if qs[i] != llama[i]]
print(f"tasks: {n} (kjv-test verse completion, 4 endings), SmolLM2-135M-Instruct F32")
print(f"llama.cpp acc_norm: {sum(llama) / n:.6f}   qsweep acc_llamacpp: {sum(qs) / n:.6f} "
      f"(acc {g.attrs['acc']:.6f}, acc_norm {g.attrs['acc_norm']:.6f})")
print(f"tasks that differ: {len(diff)} {diff[:20]}")
mq, ml = statistics.median(tq), statistics.median(tl)
print(f"wall (median of {len(tq)}): qsweep {mq:.2f} s ({min(tq):.2f}-{max(tq):.2f}), "
      f"llama.cpp {ml:.2f} s ({min(tl):.2f}-{max(tl):.2f}): {ml / mq:.2f}x")
PY
