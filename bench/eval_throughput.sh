#!/usr/bin/env bash
# eval_throughput.sh — end-to-end evaluation throughput, counted as llama.cpp counts it: tokens
# processed (windows x ctx) per second of forward-pass time (model loading and tokenization
# excluded), FLOPs per token = 2 x (parameters of all linear layers, lm_head included)
# + 4 x layers x hidden x (ctx/2). Achieved GFLOP/s is reported as a fraction of OpenBLAS sgemm
# peak measured by qsweep_bench in the same run, on the same machine.
#
# usage: bench/eval_throughput.sh [BUILD_DIR]   (default build/; needs qsweep and qsweep_bench)
# env:   THREADS (default: all cores), RANKS (default 1), SHARED (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
THREADS=${THREADS:-$(nproc)}
RANKS=${RANKS:-1}
SHARED=${SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=$THREADS

peak=$("$B/bench/qsweep_bench" --benchmark_filter='SgemmPeak/2048' --benchmark_min_time=2 \
        --benchmark_format=json 2>/dev/null | /usr/bin/python3 -c \
        'import json,sys; print("%.1f" % (json.load(sys.stdin)["benchmarks"][0]["GFLOP/s"]/1e9))')
echo "OpenBLAS sgemm peak (2048^3, $THREADS threads): $peak GFLOP/s"

kjv="$SHARED/models/kjv-llama/fp32"; text="$SHARED/data/kjv-test.txt"
[ -d "$kjv" ] || { kjv=demo/kjv-llama; text=demo/data/kjv-test.txt; }

# A synthetic 160M-parameter Llama (12 x 768, vocab 32000) on 16 windows of random token ids.
"$B/qsweep" make-model --output "$tmp/m160" --preset 160m --dtype bf16 2>/dev/null
/usr/bin/python3 -c '
import random; random.seed(0)
print("#qsweep-token-ids v1"); print(" ".join(str(random.randrange(3, 32000)) for _ in range(16*256)))' > "$tmp/ids.txt"

printf "%-28s %8s %9s %10s %9s %8s\n" model tokens seconds "tokens/s" "GFLOP/s" "of peak"
bench_one() {  # name model data
  local name=$1 model=$2 data=$3
  local cmd=("$B/qsweep" eval --model "$model" --data "$data" --ctx 256 --batch 4 -q --output-dir "$tmp/out")
  [ "$RANKS" -gt 1 ] && cmd=(mpirun --allow-run-as-root --oversubscribe -n "$RANKS" "${cmd[@]}")
  local out; out=$("${cmd[@]}")
  local tokens secs; tokens=$(sed -n 's/^tokens processed: //p' <<<"$out")
  secs=$(sed -n 's/^forward: \([0-9.]*\) s.*/\1/p' <<<"$out")
  local info; info=$("$B/qsweep" info --model "$model")
  local lin layers hidden
  lin=$(sed -n 's/^linear parameters (lm_head included): //p' <<<"$info")
  layers=$(sed -n 's/^blocks: //p' <<<"$info"); hidden=$(sed -n 's/^hidden: //p' <<<"$info")
  /usr/bin/python3 - "$name" "$tokens" "$secs" "$lin" "$layers" "$hidden" "$peak" <<'PY'
import sys
name, tokens, secs, lin, layers, hidden, peak = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
fpt = 2 * lin + 4 * layers * hidden * (256 / 2)
tps = tokens / secs
gf = tps * fpt / 1e9
print("%-28s %8d %9.3f %10.0f %9.1f %7.1f%%" % (name, tokens, secs, tps, gf, 100 * gf / peak))
PY
}
bench_one "kjv-llama ($(basename "$kjv"))" "$kjv" "$text"
bench_one "synthetic 160m (bf16)" "$tmp/m160" "$tmp/ids.txt"
echo "reference: llama.cpp llama-perplexity on kjv-llama F32, 2 threads, ctx 256: ~6.7k tokens/s"
