#!/usr/bin/env bash
# demo.sh — the README's first command: sets everything up (packages, build) and runs the main
# job on the bundled default model: the demo grid jobs/demo.ini (RTN/AWQ/GPTQ x 3/4 bits x group
# sizes 64/128 on the bf16 kjv-llama, 12 cells, each with perplexity and KL-divergence) over 2
# MPI ranks. Leaves results/demo/{sweep.h5,summary.csv,report.html,report.md}. Rerunning
# resumes: complete cells are kept (delete results/demo to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ranks=${QSWEEP_DEMO_RANKS:-2}
mpirun --allow-run-as-root --oversubscribe -n "$ranks" build/qsweep run jobs/demo.ini --resume
echo "demo: results in results/demo (qsweep status results/demo; summary.csv; sweep.h5; report.html; report.md)"
