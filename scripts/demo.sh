#!/usr/bin/env bash
# demo.sh — the README's first command: sets everything up and runs the main job on the bundled
# default model (for now: perplexity of the bf16 kjv-llama model on the King James test split,
# over 2 MPI ranks), leaving results/demo/eval.h5.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ranks=${QSWEEP_DEMO_RANKS:-2}
mpirun --allow-run-as-root --oversubscribe -n "$ranks" build/qsweep eval \
  --model demo/kjv-llama --data demo/data/kjv-test.txt --ctx 256 --output-dir results/demo
echo "demo: results in results/demo/eval.h5 (read it with: /usr/bin/python3 analysis/show_eval.py results/demo/eval.h5)"
