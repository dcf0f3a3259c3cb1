#!/usr/bin/env bash
# smollm2_mixed_calib.sh — issue 9's other-domain question: do AWQ and GPTQ still lose to RTN on
# legal English (demo/data/licenses.txt) when the calibration text is not one book? Calibrates
# SmolLM2-135M-Instruct on a two-domain mix — kjv-train plus Debian's `fortunes` collection
# (quotations, jokes, modern prose; installed by apt here, never committed) — and reruns
# bench/smollm2_figures.sh's grid on it (RTN/AWQ/GPTQ, W4/W3 g128, 128 and 32 windows;
# kjv-test and licenses.txt). The licenses text stays a third domain: none of it is calibrated on.
#   bash bench/smollm2_mixed_calib.sh        (after scripts/build.sh; about 1.2 h on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/results/smollm2-mixed}
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
echo "mixed calibration text: $MIX ($(wc -c <"$MIX") bytes; kjv-train $(wc -c <demo/data/kjv-train.txt))"
CALIB=$MIX OUT=$OUT PROTOCOLS=gptq bash bench/smollm2_figures.sh
