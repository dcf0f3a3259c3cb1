#!/usr/bin/env bash
# tasks.sh — multiple-choice accuracy (issue 13) on the demo model, with task files made by
# analysis/make_tasks.py from kjv-test:
#  - the jsonl and the hellaswag format of the same tasks give the same numbers (one scored text);
#  - 1 and 2 ranks give identical per-choice results and accuracies;
#  - the accuracy is above chance (exact binomial p < 0.01, recomputed here with SciPy);
#  - tasks longer than --ctx are reported and left out, not cut;
#  - with --data too, the perplexity lines come first and equal a --data-only run's;
#  - bad task files (fewer than two choices, gold out of range, an empty choice, a line that is not
#    JSON, a HellaSwag file whose length is not a multiple of 6) each stop eval with an error
#    naming the file and line, a non-zero exit, and no output folder.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
M="$SRC/demo/kjv-llama"
T="$SRC/demo/data/kjv-test.txt"
/usr/bin/python3 "$SRC/analysis/make_tasks.py" --input "$T" --out "$tmp/kjv" --n 60 --seed 2 >/dev/null || bad "make_tasks.py"

"$QS" eval --model "$M" --tasks "$tmp/kjv.jsonl" --ctx 128 --output-dir "$tmp/j1" -q >"$tmp/j1.out" 2>"$tmp/j1.err" || bad "eval --tasks jsonl: $(cat "$tmp/j1.err")"
"$QS" eval --model "$M" --tasks "$tmp/kjv.hellaswag.txt" --tasks-format hellaswag --ctx 128 --output-dir "$tmp/h1" -q >"$tmp/h1.out" 2>&1 || bad "eval --tasks hellaswag"
"${MPIRUN[@]}" -n 2 "$QS" eval --model "$M" --tasks "$tmp/kjv.jsonl" --ctx 128 --output-dir "$tmp/j2" -q >"$tmp/j2.out" 2>&1 || bad "eval --tasks, 2 ranks"
if grep -Eq '^tasks .*/kjv.jsonl: n=60 acc=0\.[0-9]{6} acc_norm=0\.[0-9]{6} acc_llamacpp=0\.[0-9]{6}$' "$tmp/j1.out" &&
   grep -Eq '^tasks .*/kjv.jsonl: stderr acc=0\.[0-9]{6} acc_norm=' "$tmp/j1.out"; then ok "the result lines"
else bad "result lines: $(cat "$tmp/j1.out")"; fi
if /usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
from scipy.stats import binom
t = sys.argv[1]
j1, h1, j2 = (h5py.File(f"{t}/{d}/eval.h5")["tasks"] for d in ("j1", "h1", "j2"))
a, h, b = j1["kjv"], h1["kjv.hellaswag"], j2["kjv"]
keys = ["choice_logprob", "choice_llamacpp", "choice_tokens", "choice_chars", "pred", "pred_norm", "pred_llamacpp", "gold"]
bad = [k for k in keys if not np.array_equal(a[k][:], h[k][:])]
bad += [f"2 ranks {k}" for k in keys if not np.array_equal(a[k][:], b[k][:])]
bad += [f"2 ranks {k}" for k in ("acc", "acc_norm", "acc_llamacpp", "acc_stderr") if a.attrs[k] != b.attrs[k]]
n, acc = int(a.attrs["n"]), float(a.attrs["acc_llamacpp"])
p = binom.sf(round(acc * n) - 1, n, 0.25)
pq = binom.sf(round(float(a.attrs["acc"]) * n) - 1, n, 0.25)
if not np.isclose(pq, a.attrs["p_vs_chance"], rtol=1e-9): bad.append(f"p_vs_chance {a.attrs['p_vs_chance']} vs scipy {pq}")
if p >= 0.01: bad.append(f"acc_llamacpp {acc} is not above chance (p {p:.3g})")
se = np.sqrt(acc * (1 - acc) / (n - 1))
if not np.isclose(se, a.attrs["acc_llamacpp_stderr"], rtol=1e-12): bad.append("stderr")
print("; ".join(bad) if bad else f"n={n} acc_llamacpp={acc:.4f} (p vs chance {p:.2g})")
sys.exit(1 if bad else 0)
PY
then ok "jsonl == hellaswag format, 1 == 2 ranks, above chance, p-value and stderr as SciPy's"
else bad "task results"; fi

# Too long for --ctx: reported and left out.
"$QS" eval --model "$M" --tasks "$tmp/kjv.jsonl" --ctx 80 --output-dir "$tmp/short" -q >"$tmp/s.out" 2>"$tmp/s.err" || bad "eval --ctx 80"
if grep -Eq 'task\(s\) longer than --ctx 80 tokens are not scored: [0-9]+ \(line [0-9]+\)' "$tmp/s.err" &&
   grep -Eq '^tasks .*: [0-9]+ task\(s\) not scored: longer than --ctx 80 tokens$' "$tmp/s.out" &&
   grep -q ': n=27 ' "$tmp/s.out"; then ok "too-long tasks reported"
else bad "too long: $(cat "$tmp/s.out" "$tmp/s.err")"; fi

# With --data: the perplexity lines first, unchanged.
"$QS" eval --model "$M" --data "$T" --ctx 128 --output-dir "$tmp/d" -q >"$tmp/d.out" 2>&1 || bad "eval --data"
"$QS" eval --model "$M" --data "$T" --tasks "$tmp/kjv.jsonl" --ctx 128 --output-dir "$tmp/dt" -q >"$tmp/dt.out" 2>&1 || bad "eval --data --tasks"
if [ "$(grep -v '^forward' "$tmp/d.out")" = "$(grep -v '^forward' "$tmp/dt.out" | grep -v '^tasks ')" ] &&
   [ "$(head -1 "$tmp/d.out")" = "$(head -1 "$tmp/dt.out")" ] &&
   [ "$(grep '^tasks .*: n=' "$tmp/dt.out" | sed 's/.*: n=/n=/')" = "$(grep '^tasks .*: n=' "$tmp/j1.out" | sed 's/.*: n=/n=/')" ]; then
  ok "--data and --tasks together"
else bad "data + tasks: $(cat "$tmp/dt.out")"; fi

# Bad task files.
good='{"context": "In the beginning", "choices": [" God", " man"], "gold": 0}'
check() {  # check NAME FORMAT CONTENT EXPECTED_MESSAGE
  printf '%s\n' "$3" >"$tmp/$1"
  if "$QS" eval --model "$M" --tasks "$tmp/$1" --tasks-format "$2" --output-dir "$tmp/out-$1" -q >"$tmp/o" 2>"$tmp/e"; then
    bad "$1 accepted"
  elif grep -qF "$4" "$tmp/e" && [ ! -e "$tmp/out-$1" ] && [ ! -s "$tmp/o" ]; then ok "$1: $(head -1 "$tmp/e")"
  else bad "$1: $(cat "$tmp/e"), output: $(ls "$tmp/out-$1" 2>&1) $(cat "$tmp/o")"; fi
}
check one.jsonl jsonl "$good
{\"context\": \"x\", \"choices\": [\" a\"], \"gold\": 0}" "one.jsonl:2: the task has 1 choice(s), expected at least two"
check gold.jsonl jsonl "{\"context\": \"x\", \"choices\": [\" a\", \" b\"], \"gold\": 2}" "gold.jsonl:1: gold index 2 is out of range"
check empty.jsonl jsonl "$good
$good
{\"context\": \"x\", \"choices\": [\" a\", \"\"], \"gold\": 0}" "empty.jsonl:3: choice 1 is empty"
check notjson.jsonl jsonl "$good
{\"context\": \"x\", \"choices\": [\" a\", \" b\"], " "notjson.jsonl:2: not a JSON object"
check hs.txt hellaswag "ctx
0
a
b
c" "hs.txt: 5 lines, expected a multiple of 6"
exit $fail
