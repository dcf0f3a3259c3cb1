#!/usr/bin/env bash
# blockap_table.sh — issue 16's Block-AP table: for one model and grid, `qsweep quantize` with
# each method (--n-calib 64 × 256 tokens of kjv-train, 2 ranks), then `qsweep eval --kl-divergence`
# (gptq protocol, ctx 256) on the first 40 KB of kjv-test and of the license texts. Prints one
# line per method: name, ppl kjv-test, KL kjv-test, ppl licenses, KL licenses, quantize seconds.
# Finished rows (OUT/<tag>-w<b>-g<g>-<method><suffix>/done) are skipped, so it resumes.
#   bash bench/blockap_table.sh TAG MODEL_DIR BITS:GROUP METHOD... 
#   SUF=-initgptq EXTRA='--init gptq' bash bench/blockap_table.sh out ../shared/models/kjv-llama-outliers/fp32 3:128 blockap
# One SmolLM2 Block-AP row takes about 15 minutes on a 2-core VM; the outliers rows about 1.
set -u
cd "$(dirname "$0")/.."
QS=$(pwd)/${QS:-build/qsweep}
SH=$(cd "${QSWEEP_SHARED_DIR:-../shared}" && pwd)
OUT=${OUT:-results/bap}
MPI=(mpirun --allow-run-as-root --oversubscribe -n 2)
tag=${1:?tag} M=$(cd "${2:?model dir}" && pwd) grid=${3:?bits:group}; shift 3
b=${grid%:*} g=${grid#*:}
mkdir -p "$OUT" && cd "$OUT"
[ -s test.txt ] || head -c 40000 "$SH/data/kjv-test.txt" >test.txt
[ -s lic.txt ] || head -c 40000 "$OLDPWD/demo/data/licenses.txt" >lic.txt
for m in "$@"; do
  o=$tag-w$b-g$g-$m${SUF:-}
  [ -f "$o/done" ] && { cat "$o/done"; continue; }
  rm -rf "$o"
  s=$(date +%s.%N)
  # shellcheck disable=SC2086  # EXTRA is a list of options
  "${MPI[@]}" "$QS" quantize --model "$M" --calib "$SH/data/kjv-train.txt" --bits "$b" --group-size "$g" --n-calib 64 \
    --seq-len 256 --method "$m" ${EXTRA:-} -q --output-dir "$o" >"$o.log" 2>&1 || { echo "FAIL $o (see $OUT/$o.log)"; continue; }
  e=$(date +%s.%N)
  for t in test lic; do
    "${MPI[@]}" "$QS" eval --model "$M" --data $t.txt --quantized "$o" --ctx 256 --kl-divergence -q --output-dir "$o-e-$t" >>"$o.log" 2>&1
  done
  /usr/bin/python3 - "$o" "$s" "$e" >"$o/done" <<'PY'
import sys, h5py
o, s, e = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
r = []
for t in ("test", "lic"):
    a = h5py.File(f"{o}-e-{t}/eval.h5").attrs
    r += [float(a["perplexity"]), float(a["kl_divergence"])]
print(o, " ".join(f"{x:.5g}" for x in r), f"{e - s:.1f}")
PY
  cat "$o/done"
done
