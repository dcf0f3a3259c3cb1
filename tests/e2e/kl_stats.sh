#!/usr/bin/env bash
# kl_stats.sh — llama.cpp's KL-divergence statistics (issue 13): `qsweep eval --kl-divergence`
# prints and stores (eval.h5 kl_stats) the mean KLD ± uncertainty, its percentiles, same top p,
# Δp mean and RMS, ln(PPL(Q)/PPL(base)); every figure equals an independent float64 NumPy
# computation on the same windows (tests/reference/kl_ref.py), the old lines stay first and
# unchanged, and 1 and 2 ranks print the same.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
mkdir -p "$tmp/m" && cp "$M/config.json" "$tmp/m/" && ln -s "$M/model.safetensors" "$tmp/m/"  # no tokenizer: [BOS] + ids
"$QS" tokenize --model "$M" --data "$SRC/demo/data/kjv-test.txt" --output "$tmp/all.ids" >/dev/null || bad "tokenize"
{ head -1 "$tmp/all.ids"; tail -n +2 "$tmp/all.ids" | tr -s ' \n' '\n' | grep . | head -1023 | tr '\n' ' '; echo; } >"$tmp/t.ids"
"$QS" quantize --model "$M" --calib "$SRC/demo/data/kjv-train.txt" --method rtn --bits 3 --n-calib 8 --seq-len 64 --output-dir "$tmp/q" -q >/dev/null || bad "quantize"
"$QS" eval --model "$tmp/m" --quantized "$tmp/q" --data "$tmp/t.ids" --ctx 128 --kl-divergence --output-dir "$tmp/e1" -q >"$tmp/e1.out" 2>"$tmp/e1.err" || bad "eval"
"${MPIRUN[@]}" -n 2 "$QS" eval --model "$tmp/m" --quantized "$tmp/q" --data "$tmp/t.ids" --ctx 128 --kl-divergence --output-dir "$tmp/e2" -q >"$tmp/e2.out" 2>"$tmp/e2.err" || bad "eval 2 ranks"
if [ "$(sed -n 1p "$tmp/e1.out" | cut -c1-12)" = "perplexity: " ] && sed -n 5p "$tmp/e1.out" | grep -q '^kl-divergence: ' &&
   sed -n 6p "$tmp/e1.out" | grep -q '^top-1 agreement: ' && sed -n 7p "$tmp/e1.out" | grep -q '^forward: ' &&
   sed -n 8p "$tmp/e1.out" | grep -q '^kl statistics: 1016 tokens' && grep -q '^kld 99.9%: ' "$tmp/e1.out" &&
   grep -q '^ln(ppl(q)/ppl(base)): ' "$tmp/e1.out" &&
   [ "$(grep -v '^forward' "$tmp/e1.out")" = "$(grep -v '^forward' "$tmp/e2.out")" ]; then
  ok "the old lines first and unchanged, then the statistics; 1 == 2 ranks"
else bad "output: $(cat "$tmp/e1.out" "$tmp/e2.out" | head -40)"; fi
/usr/bin/python3 "$SRC/tests/reference/kl_ref.py" "$tmp/m" "$tmp/q/quantized.h5" "$tmp/t.ids" --ctx 128 >"$tmp/ref.json" || bad "kl_ref.py"
if /usr/bin/python3 - "$tmp/e1/eval.h5" "$tmp/ref.json" <<'PY'
import json, math, sys, h5py
g = h5py.File(sys.argv[1])["kl_stats"]
ref = json.load(open(sys.argv[2]))
bad = []
for k, v in ref.items():
    q = float(g.attrs[k])
    # fp32 logits in qsweep, float64 in the reference: 1e-3 relative covers the smallest KLs
    if not math.isclose(q, v, rel_tol=1e-3, abs_tol=1e-7):
        bad.append(f"{k}: qsweep {q!r} numpy {v!r}")
print("; ".join(bad) if bad else f"{len(ref)} figures agree (kld mean {ref['kld_mean']:.6f}, "
      f"99.9% {ref['kld_99.9%']:.6f}, same top {ref['same_top']:.4f}, RMS dp {ref['delta_p_rms']:.5f})")
sys.exit(1 if bad else 0)
PY
then ok "every statistic equals the float64 NumPy reference"
else bad "kl statistics differ from the reference"; fi
exit $fail
