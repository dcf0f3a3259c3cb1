#!/usr/bin/env bash
# vs_llamacpp.sh — qsweep against llama.cpp on the same CPU, same weights (F32 GGUF), same texts,
# in one run: `qsweep eval --ctx 256 --protocol llamacpp --threads 2` (one rank) against
# `llama-perplexity -c 256 -b 256 -t 2`, alternating, ROUNDS times each, on kjv-llama and
# SmolLM2, on the whole kjv-test and on its first ~8k tokens; then `qsweep calibrate` (128 × 256
# windows of kjv-train) against `llama-imatrix -c 256 --chunks 128 -t 2` on the same text (the
# same number of 256-token windows: llama-imatrix takes consecutive chunks, qsweep samples).
# Whole commands are timed as a user waits (load + tokenize + compute), and the tokens/s each
# prints is recorded. qsweep runs twice per round: "cold" with its token cache off (it tokenizes
# the text, as llama.cpp does every time) and "warm" with the text's ids already in its cache (a
# user's second run on the same text). Prints a Markdown table of medians (min–max) and ratios.
#
# llama.cpp is not part of qsweep: build it yourself beside the project (a scratch folder, from
# the public ggerganov/llama.cpp repository; cmake -DGGML_NATIVE=ON, targets llama-perplexity and
# llama-imatrix) and point LLAMA_BIN at its bin/ folder.
#   LLAMA_BIN=/path/to/llama.cpp/build/bin bash bench/vs_llamacpp.sh   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BIN:?set LLAMA_BIN to a llama.cpp build/bin folder}"
QS=${QS:-$PWD/build/qsweep}
OUT=${OUT:-$PWD/results/vs-llamacpp}
SH=${QSWEEP_SHARED_DIR:-$PWD/../shared}
ROUNDS=${ROUNDS:-3}
cache=${QSWEEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qsweep}
mkdir -p "$OUT"
export OMP_NUM_THREADS=2

# The same weights as F32 GGUFs: SmolLM2 by its make.sh, kjv-llama by our converter.
bash "$SH/models/smollm2/make.sh" "$PWD/build/models/smollm2"
[ -s "$OUT/smollm2-f32.gguf" ] || bash "$SH/models/smollm2/make.sh" "$OUT/smollm2-tmp" --gguf-f32 "$OUT/smollm2-f32.gguf"
rm -rf "$OUT/smollm2-tmp"
if [ ! -s "$OUT/kjv-f32.gguf" ]; then
  "$cache/smollm2-venv/bin/pip" install -q --disable-pip-version-check sentencepiece
  "$cache/smollm2-venv/bin/python" bench/hf_to_gguf_f32.py "$SH/models/kjv-llama/fp32" "$OUT/kjv-f32.gguf"
fi
WHOLE=$SH/data/kjv-test.txt
head -c 30000 "$WHOLE" | sed '$d' >"$OUT/kjv-test-8k.txt"   # ~8k tokens, whole lines

declare -A QM=([kjv]="$SH/models/kjv-llama/fp32" [smollm2]="$PWD/build/models/smollm2")
declare -A GG=([kjv]="$OUT/kjv-f32.gguf" [smollm2]="$OUT/smollm2-f32.gguf")
log=$OUT/runs.tsv; : >"$log"
rm -rf "$OUT/token-cache"
t0() { date +%s.%N; }
for model in kjv smollm2; do
  for text in whole 8k; do
    f=$WHOLE; [ $text = 8k ] && f=$OUT/kjv-test-8k.txt
    for r in $(seq "$ROUNDS"); do
      for v in cold warm; do
        tc=off; [ $v = warm ] && tc=$OUT/token-cache
        [ $v = warm ] && [ $r = 1 ] && QSWEEP_TOKEN_CACHE=$tc "$QS" eval --model "${QM[$model]}" --data "$f" --ctx 256 \
          --protocol llamacpp --threads 2 -q --output-dir "$OUT/q" >/dev/null 2>&1   # fills the cache
        a=$(t0); QSWEEP_TOKEN_CACHE=$tc "$QS" eval --model "${QM[$model]}" --data "$f" --ctx 256 --protocol llamacpp \
          --threads 2 -q --output-dir "$OUT/q" >"$OUT/q.out" 2>&1; b=$(t0)
        tps=$(sed -n 's/^forward: [0-9.]* s, \([0-9]*\) tokens\/s.*/\1/p' "$OUT/q.out")
        ppl=$(sed -n 's/^perplexity: \([0-9.]*\).*/\1/p' "$OUT/q.out")
        printf 'eval\t%s\t%s\tqsweep-%s\t%s\t%s\t%s\n' $model $text $v "$(echo "$b - $a" | bc)" "$tps" "$ppl" >>"$log"
      done
      a=$(t0); "$LLAMA_BIN/llama-perplexity" -m "${GG[$model]}" -f "$f" -c 256 -b 256 -t 2 >"$OUT/l.out" 2>&1; b=$(t0)
      tps=$(sed -n 's/.*prompt eval time.*, *\([0-9.]*\) tokens per second.*/\1/p' "$OUT/l.out" | head -1)
      ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$OUT/l.out")
      printf 'eval\t%s\t%s\tllama.cpp\t%s\t%s\t%s\n' $model $text "$(echo "$b - $a" | bc)" "$tps" "$ppl" >>"$log"
    done
  done
done
CAL=$SH/data/kjv-train.txt
for r in $(seq "$ROUNDS"); do
  for v in cold warm; do
    tc=off; [ $v = warm ] && tc=$OUT/token-cache
    [ $v = warm ] && [ $r = 1 ] && QSWEEP_TOKEN_CACHE=$tc "$QS" calibrate --model "${QM[kjv]}" --calib "$CAL" \
      --n-calib 128 --seq-len 256 --threads 2 -q --output-dir "$OUT/c" >/dev/null 2>&1   # fills the cache
    a=$(t0); QSWEEP_TOKEN_CACHE=$tc "$QS" calibrate --model "${QM[kjv]}" --calib "$CAL" --n-calib 128 --seq-len 256 \
      --threads 2 -q --output-dir "$OUT/c" >"$OUT/c.out" 2>&1; b=$(t0)
    tps=$(sed -n 's/^statistics pass: [0-9.]* s, \([0-9]*\) tokens\/s.*/\1/p' "$OUT/c.out")
    printf 'calibrate\tkjv\t128x256\tqsweep-%s\t%s\t%s\t-\n' $v "$(echo "$b - $a" | bc)" "$tps" >>"$log"
  done
  a=$(t0); "$LLAMA_BIN/llama-imatrix" -m "${GG[kjv]}" -f "$CAL" -c 256 -b 256 --chunks 128 -t 2 \
    -o "$OUT/imatrix.dat" >"$OUT/i.out" 2>&1; b=$(t0)
  tps=$(sed -n 's/.*prompt eval time.*, *\([0-9.]*\) tokens per second.*/\1/p' "$OUT/i.out" | head -1)
  printf 'calibrate\tkjv\t128x256\tllama.cpp\t%s\t%s\t-\n' "$(echo "$b - $a" | bc)" "$tps" >>"$log"
done

/usr/bin/python3 - "$log" <<'PY'
import sys, statistics as st
from collections import defaultdict
runs = defaultdict(lambda: defaultdict(list))
ppl = {}
for line in open(sys.argv[1]):
    stage, model, text, tool, wall, tps, p = line.rstrip("\n").split("\t")
    runs[(stage, model, text)][tool].append((float(wall), float(tps) if tps else float("nan")))
    if p not in ("-", ""): ppl[(stage, model, text, tool)] = p
def med(v): return f"{st.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"
print("| stage | model | text | qsweep token cache | qsweep wall s | llama.cpp wall s | wall ratio | qsweep tok/s | llama.cpp tok/s | tok/s ratio | ppl qsweep / llama.cpp |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (stage, model, text), t in runs.items():
    lw = [w for w, _ in t["llama.cpp"]]; lt = [x for _, x in t["llama.cpp"]]
    for v in ("cold", "warm"):
        q = t["qsweep-" + v]
        qw = [w for w, _ in q]; qt = [x for _, x in q]
        print(f"| {stage} | {model} | {text} | {v} | {med(qw)} | {med(lw)} | {st.median(lw)/st.median(qw):.2f}x | "
              f"{st.median(qt):.0f} | {st.median(lt):.0f} | {st.median(qt)/st.median(lt):.2f}x | "
              f"{ppl.get((stage, model, text, 'qsweep-' + v), '-')} / {ppl.get((stage, model, text, 'llama.cpp'), '-')} |")
PY
