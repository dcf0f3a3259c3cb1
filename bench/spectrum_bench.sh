#!/usr/bin/env bash
# spectrum_bench.sh — `qsweep spectrum` against the NumPy reference (float64 eigvalsh of the same
# Gram matrices, per layer, all precisions; tests/reference/spectrum_ref.py, one BLAS thread per
# process as qsweep uses one per layer) on kjv-llama and on a synthetic checkpoint with
# Llama-3.2-1B shapes (block 0 only: 2048x2048, 512x2048, 8192x2048 and 2048x8192 layers).
# Reports seconds, seconds per layer, the NumPy/qsweep ratio and the 1- vs 2-rank speed-up.
#
# usage: bench/spectrum_bench.sh [BUILD_DIR]   env: SHARED (../shared), SKIP_1B=1
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
SHARED=${SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
P=fp64,fp32,fp16,bf16
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)

secs() { sed -n 's/^seconds: \([0-9.]*\).*/\1/p'; }
bench() {  # name model filter
  local name=$1 model=$2 filter=$3
  local n; n=$("$B/qsweep" spectrum --model "$model" --filter-layers "$filter" --precisions $P \
              --no-plots -q --output-dir "$tmp/one" | sed -n 's/^layers: //p')
  local t1 t1b t2 tn
  t1=$(OMP_NUM_THREADS=1 "$B/qsweep" spectrum --model "$model" --filter-layers "$filter" --precisions $P --no-plots -q --output-dir "$tmp/one" | secs)
  t1b=$("$B/qsweep" spectrum --model "$model" --filter-layers "$filter" --precisions $P --no-plots -q --threads "$(nproc)" --output-dir "$tmp/oneb" | secs)
  t2=$(OMP_NUM_THREADS=1 "${MPIRUN[@]}" -x OMP_NUM_THREADS -n 2 "$B/qsweep" spectrum --model "$model" --filter-layers "$filter" --precisions $P --no-plots -q --output-dir "$tmp/two" | secs)
  tn=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tests/reference/spectrum_ref.py --model "$model" \
        --all-layers --precisions $P --filter "$filter" --timing | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["total_seconds"])')
  same=identical
  for d in oneb two; do cmp -s "$tmp/one/precision_alpha_hill_results.csv" "$tmp/$d/precision_alpha_hill_results.csv" || same=DIFFERENT; done
  /usr/bin/python3 - "$name" "$n" "$t1" "$t1b" "$t2" "$tn" "$same" <<'PY'
import sys
name, n = sys.argv[1], int(sys.argv[2])
t1, t1b, t2, tn = map(float, sys.argv[3:7])
same = sys.argv[7]
print(f"{name}: {n} layers x 4 precisions")
print(f"  numpy (1 thread)           {tn:8.2f} s  {tn/n:.3f} s/layer")
print(f"  qsweep 1 rank x 1 thread   {t1:8.2f} s  {t1/n:.3f} s/layer  numpy/qsweep {tn/t1:.2f}x")
print(f"  qsweep 1 rank x 2 threads  {t1b:8.2f} s  speed-up {t1/t1b:.2f}x")
print(f"  qsweep 2 ranks x 1 thread  {t2:8.2f} s  speed-up {t1/t2:.2f}x over 1 rank (outputs {same})")
PY
}
echo "machine: $(nproc) cores; precisions $P; qsweep: one layer per thread (threads = cores / ranks)"
kjv="$SHARED/models/kjv-llama/fp32"; [ -d "$kjv" ] || kjv=demo/kjv-llama
bench "kjv-llama (29 layers)" "$kjv" ""
if [ "${SKIP_1B:-0}" != 1 ]; then
  "$B/qsweep" make-model --output "$tmp/m1b" --preset 1b --dtype bf16 2>/dev/null
  bench "synthetic 1B shapes (block 0)" "$tmp/m1b" 'layers\.0\.'
fi
