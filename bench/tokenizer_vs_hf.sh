#!/usr/bin/env bash
# tokenizer_vs_hf.sh — encoding speed of qsweep's tokenizer.json reader against the Rust library
# (tokenizers==0.23.3, Tokenizer.from_file(...).encode(text)), both on one core (taskset -c 0,
# RAYON_NUM_THREADS=1), on one text (default ../shared/data/kjv-train.txt, 3.7 MB).
#
# Two figures per side, best of N runs:
#   whole command — start, load tokenizer.json, read the text, encode, write/exit;
#   in-process    — encode alone: the Rust side times encode() inside Python; for qsweep it is the
#                   whole `qsweep tokenize` minus the same command on a one-byte text (start-up,
#                   tokenizer load and output are then the same).
#
# usage: bash bench/tokenizer_vs_hf.sh BUILD_DIR [MODEL_DIR] [TEXT] [RUNS]
#   MODEL_DIR: a folder with config.json + tokenizer.json (default BUILD_DIR/models/smollm2)
set -euo pipefail
build=$(cd "${1:?usage: tokenizer_vs_hf.sh BUILD_DIR [MODEL_DIR] [TEXT] [RUNS]}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
model=${2:-$build/models/smollm2}
text=${3:-$src/../shared/data/kjv-train.txt}
runs=${4:-3}
qsweep=$build/qsweep
py=$(bash "$src/scripts/test_venv.sh" "$build")
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""
T=$(mktemp -d "${TMPDIR:-/tmp}/qsweep-tokbench.XXXXXX")
trap 'rm -rf "$T"' EXIT
printf 'a' >"$T/tiny.txt"
bytes=$(stat -c %s "$text")

now() { date +%s.%N; }
best() { sort -g | head -n 1; }
# seconds of one run of "$@"
timed() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo "$t1 - $t0" | bc -l; }

cat >"$T/rust.py" <<'PY'
import sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8", newline="").read()
t0 = time.perf_counter()
ids = tok.encode(text, add_special_tokens=False).ids
print(time.perf_counter() - t0, len(ids))
PY

rust_in=(); rust_whole=(); q_whole=(); q_tiny=()
for _ in $(seq "$runs"); do
  t0=$(now)
  out=$($pin "$py" "$T/rust.py" "$model/tokenizer.json" "$text")
  t1=$(now)
  rust_in+=("${out%% *}")
  rust_whole+=("$(echo "$t1 - $t0" | bc -l)")
  q_whole+=("$(timed $pin "$qsweep" tokenize --model "$model" --data "$text" --output "$T/ids.txt")")
  q_tiny+=("$(timed $pin "$qsweep" tokenize --model "$model" --data "$T/tiny.txt" --output "$T/tiny.ids")")
done
r_in=$(printf '%s\n' "${rust_in[@]}" | best)
r_wh=$(printf '%s\n' "${rust_whole[@]}" | best)
q_wh=$(printf '%s\n' "${q_whole[@]}" | best)
q_ti=$(printf '%s\n' "${q_tiny[@]}" | best)
q_in=$(echo "$q_wh - $q_ti" | bc -l)
mbs() { echo "scale=2; $bytes / $1 / 1000000" | bc -l; }
printf 'text: %s (%d bytes), tokenizer: %s, one core, best of %d\n' "$text" "$bytes" "$model/tokenizer.json" "$runs"
printf '%-14s %12s %10s %12s %10s\n' "" "whole (s)" "MB/s" "encode (s)" "MB/s"
printf '%-14s %12.3f %10s %12.3f %10s\n' "Rust 0.23.3" "$r_wh" "$(mbs "$r_wh")" "$r_in" "$(mbs "$r_in")"
printf '%-14s %12.3f %10s %12.3f %10s\n' "qsweep" "$q_wh" "$(mbs "$q_wh")" "$q_in" "$(mbs "$q_in")"
printf 'speed-up: whole command %.1fx, encode %.1fx\n' "$(echo "$r_wh / $q_wh" | bc -l)" "$(echo "$r_in / $q_in" | bc -l)"
