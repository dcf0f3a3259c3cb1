#!/usr/bin/env bash
# memory_1b.sh — issue 11's memory and scale figures, peak RSS from /usr/bin/time -v per rank:
#  1. GPTQ W4 on one block of the 1b preset (hidden 2048, FFN 8192, vocab 2048, kjv tokenizer),
#     --seq-len 16, --n-calib 128 and 512 (bar: each under 4 GB, the second ≤ 10% above the first);
#  2. the whole --preset 1b model (16 blocks, vocab 128256; 1.24 B parameters, bf16): GPTQ W4 g128
#     --n-calib 32 --seq-len 512, then eval of 16384 tokens of kjv-test (32 windows of 512) with
#     the quantized weights, on 1 and on 2 ranks: peak RSS per rank, seconds, tokens/s; and the
#     two ranks' results compared bit for bit (qsweep diff).
# Prints a Markdown table. About 40 min on a 2-core VM; needs ~6 GB of disk in $OUT.
#   bash bench/memory_1b.sh                 (after scripts/build.sh; QS=..., OUT=... to change)
set -euo pipefail
cd "$(dirname "$0")/.."
QS=${QS:-$PWD/build/qsweep}
OUT=${OUT:-$PWD/results/memory-1b}
SH=${QSWEEP_SHARED_DIR:-$PWD/../shared}
TOK=$SH/models/kjv-llama/fp32/tokenizer.model
[ -f "$TOK" ] || TOK=$PWD/demo/kjv-llama/tokenizer.model
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)
mkdir -p "$OUT"
CAL=$PWD/demo/data/kjv-train.txt
rss() { grep "Maximum resident" "$1" | awk '{printf "%s%.2f", sep, $6/1048576; sep=" / "}'; }  # GiB per rank
secs() { grep "Elapsed (wall clock)" "$1" | head -1 | awk '{print $8}'; }
rows=()

[ -d "$OUT/m1b1" ] || "$QS" make-model --preset 1b --layers 1 --vocab 2048 --tokenizer "$TOK" --output "$OUT/m1b1"
for n in 128 512; do
  /usr/bin/time -v "$QS" quantize --model "$OUT/m1b1" --method gptq --bits 4 --n-calib $n --seq-len 16 \
    --calib "$CAL" --output-dir "$OUT/q1b1-$n" -q >"$OUT/q1b1-$n.out" 2>"$OUT/q1b1-$n.err"
  rows+=("| GPTQ W4 g128, 1 block of 1b, n-calib $n × 16 | 1 | $(rss "$OUT/q1b1-$n.err") | $(secs "$OUT/q1b1-$n.err") | |")
done

[ -d "$OUT/m1b" ] || "$QS" make-model --preset 1b --tokenizer "$TOK" --output "$OUT/m1b"
# 16384 tokens of kjv-test, pre-tokenized (the first line of `qsweep tokenize` output is its header).
"$QS" tokenize --model "$OUT/m1b" --data "$PWD/demo/data/kjv-test.txt" --output "$OUT/all.ids" >/dev/null
{ head -1 "$OUT/all.ids"; sed 1d "$OUT/all.ids" | tr ' ' '\n' | grep -v '^$' | awk 'NR<=16384' | tr '\n' ' '; echo; } >"$OUT/eval16k.ids"
for r in 1 2; do
  pre=(); [ $r = 2 ] && pre=("${MPI[@]}" -n 2)
  "${pre[@]}" /usr/bin/time -v "$QS" quantize --model "$OUT/m1b" --method gptq --bits 4 --group-size 128 \
    --n-calib 32 --seq-len 512 --calib "$CAL" --output-dir "$OUT/q1b-r$r" -q >"$OUT/q1b-r$r.out" 2>"$OUT/q1b-r$r.err"
  rows+=("| GPTQ W4 g128, whole 1b, n-calib 32 × 512 | $r | $(rss "$OUT/q1b-r$r.err") | $(secs "$OUT/q1b-r$r.err") | $(awk '/^seconds/{printf "%.0f tok/s calib", 16384/$2}' "$OUT/q1b-r$r.out") |")
  "${pre[@]}" /usr/bin/time -v "$QS" eval --model "$OUT/m1b" --data "$OUT/eval16k.ids" --ctx 512 \
    --quantized "$OUT/q1b-r$r" --output-dir "$OUT/e1b-r$r" -q >"$OUT/e1b-r$r.out" 2>"$OUT/e1b-r$r.err"
  rows+=("| eval, whole 1b W4, 16384 tokens (ctx 512) | $r | $(rss "$OUT/e1b-r$r.err") | $(secs "$OUT/e1b-r$r.err") | $(sed -n 's/^forward: .*s, \([0-9]*\) tokens\/s.*/\1 tok\/s/p' "$OUT/e1b-r$r.out") |")
done
same_q=$("$QS" diff "$OUT/q1b-r1/quantized.h5" "$OUT/q1b-r2/quantized.h5" >/dev/null 2>&1 && echo identical || echo DIFFERENT)
# The two eval.h5 name different --quantized folders; every other bit must agree.
same_e=$("$QS" diff "$OUT/e1b-r1/eval.h5" "$OUT/e1b-r2/eval.h5" 2>&1 | grep -v '^differs: /@quantized: values differ$' | grep -q . \
         && echo DIFFERENT || echo "identical (but for the --quantized path)")

echo "| run | ranks | peak RSS per rank (GiB) | wall (h:mm:ss) | throughput |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "1 vs 2 ranks: quantized.h5 $same_q, eval.h5 $same_e; perplexity $(grep '^perplexity' "$OUT/e1b-r1.out" | cut -d' ' -f2) / $(grep '^perplexity' "$OUT/e1b-r2.out" | cut -d' ' -f2)"
