#!/usr/bin/env bash
# quant_table.sh — the quantization results table: kjv-llama and kjv-llama-outliers (bf16),
# W3/W4 x group 128/64 x rtn/awq/gptq, calibrated on 128 windows of 256 tokens of kjv-train
# (seed 0), evaluated on kjv-test (gptq protocol, ctx 256) with KL(full ‖ quantized) and top-1
# agreement. Prints a Markdown table (and keeps it in $OUT/table.md).
#
# usage: bench/quant_table.sh [BUILD_DIR]   env: SHARED (../shared), OUT (results/quant_table)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
SHARED=${SHARED:-../shared}
OUT=${OUT:-results/quant_table}
mkdir -p "$OUT"
QS="$B/qsweep"
# Tokenize the texts once (pre-tokenized files are read instantly).
"$QS" tokenize --model demo/kjv-llama --data "$SHARED/data/kjv-train.txt" --output "$OUT/train.ids" >/dev/null
"$QS" tokenize --model demo/kjv-llama --data "$SHARED/data/kjv-test.txt" --output "$OUT/test.ids" >/dev/null
table="$OUT/table.md"
echo "| model | config | method | ppl | KL (nats/token) | top-1 agree | bits/weight | quantize s |" >"$table"
echo "|---|---|---|---|---|---|---|---|" >>"$table"
for model in kjv-llama kjv-llama-outliers; do
  M="$SHARED/models/$model/bf16"
  fp=$("$QS" eval --model "$M" --data "$OUT/test.ids" -q --output-dir "$OUT" | sed -n 's/^perplexity: //p')
  printf "| %s | bf16 | full precision | %.4f | 0 | 1 | 16 | |\n" "$model" "$fp" >>"$table"
  for bits in 3 4; do
    for g in 128 64; do
      for method in rtn awq gptq; do
        d="$OUT/$model-w$bits-g$g-$method"
        q=$("$QS" quantize --model "$M" --method $method --bits $bits --group-size $g --calib "$OUT/train.ids" \
              --n-calib 128 --seq-len 256 --seed 0 --output-dir "$d" -q)
        e=$("$QS" eval --model "$M" --data "$OUT/test.ids" --quantized "$d" --kl-divergence -q --output-dir "$d")
        ppl=$(sed -n 's/^perplexity: //p' <<<"$e"); kl=$(sed -n 's/^kl-divergence: \([^ ]*\).*/\1/p' <<<"$e")
        t1=$(sed -n 's/^top-1 agreement: //p' <<<"$e"); bpw=$(sed -n 's/^bits per quantized weight: \([^ ]*\).*/\1/p' <<<"$q")
        secs=$(sed -n 's/^seconds: //p' <<<"$q")
        printf "| %s | W%s g%s | %s | %.4f | %.5f | %.4f | %s | %.1f |\n" "$model" $bits $g $method "$ppl" "$kl" "$t1" "$bpw" "$secs" | tee -a "$table"
      done
    done
  done
done
cat "$table"
