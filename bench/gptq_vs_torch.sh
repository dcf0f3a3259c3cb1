#!/usr/bin/env bash
# gptq_vs_torch.sh — GPTQ per layer, qsweep (fp64, C++) against the same algorithm in PyTorch
# (Debian's python3-torch, fp32 and fp64) on the same Hessians: block 0 of demo/kjv-llama
# (Gram matrices from 32 calibration windows of 256 tokens of kjv-test) and synthetic layers of
# Llama-3.2-1B shapes (2048x2048, 8192x2048). W4 g128, damp 0.01, blocks of 128, no act-order,
# best of 3, the same thread count on both sides. Prints a Markdown table (kept in $OUT/table.md)
# of seconds, ratios torch/qsweep and agreement of the results.
#
# python3-torch is a benchmark-only dependency (not in scripts/setup.sh); it is installed here
# when missing (apt-get, needs root).
#
# usage: bench/gptq_vs_torch.sh [BUILD_DIR]
#   env: THREADS (2), REPS (3), OUT (results/gptq_vs_torch), MODEL (demo/kjv-llama),
#        TEXT (demo/data/kjv-test.txt), ONLY (all | real | synthetic),
#        KEEP (0: the ~230 MB of .npy dumps are deleted at the end; 1: kept, so that
#        bench/gptq_torch.py "$OUT" can be rerun on them)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
OUT=${OUT:-results/gptq_vs_torch}
MODEL=${MODEL:-demo/kjv-llama}
TEXT=${TEXT:-demo/data/kjv-test.txt}
ONLY=${ONLY:-all}
KEEP=${KEEP:-0}
PY=/usr/bin/python3
start=$(date +%s)

if ! dpkg -s python3-torch >/dev/null 2>&1; then
  echo "installing python3-torch (Debian) for this benchmark..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-torch >/dev/null
fi
"$PY" -c "import torch, numpy" || { echo "python3-torch does not import" >&2; exit 1; }

BIN="$B/bench/qsweep_bench_gptq"
cmake --build "$B" -j2 --target qsweep_bench_gptq >/dev/null  # a no-op when up to date
mkdir -p "$OUT"
echo "load before: $(uptime)" >&2
"$BIN" --model "$MODEL" --text "$TEXT" --out "$OUT" --threads "$THREADS" --reps "$REPS" --only "$ONLY"
"$PY" bench/gptq_torch.py "$OUT" --threads "$THREADS" --reps "$REPS" | tee "$OUT/table.md"
load_after=$(uptime)
echo "load after: $load_after" >&2
{
  echo
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); load after: ${load_after##*load average: }"
  echo "whole script: $(( $(date +%s) - start )) s"
} | tee -a "$OUT/table.md"
[ "$KEEP" = 1 ] || rm -f "$OUT"/*.npy
