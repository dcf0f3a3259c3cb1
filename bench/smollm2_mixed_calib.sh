#!/usr/bin/env bash
# smollm2_mixed_calib.sh — issue 9's other-domain question: do AWQ and GPTQ still lose to RTN on
# legal English (demo/data/licenses.txt) when the calibration text is not one book? Calibrates
# SmolLM2-135M-Instruct on a two-domain mix — kjv-train plus Debian's `fortunes` collection
# (quotations, jokes, modern prose; installed by apt here, never committed) — and evaluates
# AWQ and GPTQ (W4 and W3 g128, 128 and 32 windows × 256 tokens, seed 0) on the licenses text,
# a third domain none of it is calibrated on (RTN uses no calibration: its figures on that text
# are the README's).
# Also GPTQ W4 calibrated on kjv-train alone with 10× the damping (--gptq-damp 0.1), to test
# the overfitting explanation from the other side. Prints a Markdown table; results in $OUT.
#   bash bench/smollm2_mixed_calib.sh        (after scripts/build.sh; about 45 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
QS=${QS:-$PWD/build/qsweep}
OUT=${OUT:-$PWD/results/smollm2-mixed}
SH=${QSWEEP_SHARED_DIR:-$PWD/../shared}
M=$PWD/build/models/smollm2
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none -n 2)
OTHER=$PWD/demo/data/licenses.txt
bash "$SH/models/smollm2/make.sh" "$M"
mkdir -p "$OUT"
if [ ! -d /usr/share/games/fortunes ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q fortunes >/dev/null
fi
MIX=$OUT/mixed-calib.txt
if [ ! -s "$MIX" ]; then
  # Each fortune ends with a line holding only '%'; keep the text, one blank line between fortunes.
  { cat demo/data/kjv-train.txt; echo
    for f in /usr/share/games/fortunes/*; do
      case "$f" in *.dat|*.u8) continue ;; esac
      [ -f "$f" ] && sed 's/^%$//' "$f"
    done; } >"$MIX.tmp"
  mv "$MIX.tmp" "$MIX"
fi
echo "mixed calibration text: $MIX ($(wc -c <"$MIX") bytes; kjv-train $(wc -c <demo/data/kjv-train.txt))" >&2
cell() {  # cell NAME CALIB METHOD BITS NCALIB [extra quantize args]
  local name=$1 cal=$2 method=$3 bits=$4 n=$5; shift 5
  local d=$OUT/$name
  [ -s "$d/quantized.h5" ] || "${MPI[@]}" "$QS" quantize --model "$M" --calib "$cal" --method "$method" --bits "$bits" \
    --group-size 128 --n-calib "$n" --seq-len 256 "$@" -q --output-dir "$d" >/dev/null
  [ -s "$d/other/eval.h5" ] || "${MPI[@]}" "$QS" eval --model "$M" --data "$OTHER" --ctx 256 --quantized "$d" -q \
    --output-dir "$d/other" >/dev/null
  printf '| %s | W%s g128 | %s | %s | %s |\n' "$method${*:+ ($*)}" "$bits" "$n" "$(basename "$cal")" \
    "$(/usr/bin/python3 -c "import h5py,sys; print('%.4f' % h5py.File(sys.argv[1],'r').attrs['perplexity'])" "$d/other/eval.h5")"
}
echo "| method | config | calib windows | calibration text | ppl licenses.txt |"
echo "|---|---|---|---|---|"
# RTN takes no calibration: its licenses.txt figures (W4 30.8964, W3 128.0780) are in the README.
for m in gptq awq; do cell $m-w4-c128 "$MIX" $m 4 128; done
for m in gptq awq; do cell $m-w3-c128 "$MIX" $m 3 128; done
for m in gptq awq; do cell $m-w4-c32 "$MIX" $m 4 32; done
cell gptq-w4-kjv-damp0.1 "$PWD/demo/data/kjv-train.txt" gptq 4 128 --gptq-damp 0.1
