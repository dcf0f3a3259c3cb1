#!/usr/bin/env bash
# mixed_precision.sh — issue 14's measurement: for one model, GPTQ sensitivity with output-error
# and kl-probe scores, allocations (by each score) at the exact budget of uniform W3 g128, at 3.5
# bits and at uniform W4 g128's, quantized with --plan, and the KL against full precision on
# kjv-test and on the license texts (which neither the calibration nor the probes see), next to
# the uniform models. Prints a Markdown table and writes OUT/predicted_vs_measured.png (the sum of
# the per-layer probe KLs each allocation predicted against the KL measured on kjv-test).
#   bash bench/mixed_precision.sh MODEL_DIR [OUT] [PALETTE] [PROBE_WINDOWS] [PROBE_CTX]
# e.g. bash bench/mixed_precision.sh ../shared/models/kjv-llama-outliers/bf16   (about 6 min here)
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:?model directory}
OUT=${2:-results/mixed-precision/$(basename "$(dirname "$M")")-$(basename "$M")}
PALETTE=${3:-2:128,3:64,3:128,4:128,8:128}
PW=${4:-8}
PC=${5:-128}
QS=${QS:-build/qsweep}
SH=${QSWEEP_SHARED_DIR:-../shared}
C=$SH/data/kjv-train.txt
mkdir -p "$OUT"
head -c 60000 "$SH/data/kjv-test.txt" >"$OUT/test.txt"
head -c 60000 demo/data/licenses.txt >"$OUT/lic.txt"
Q=(--method gptq --n-calib 32 --seq-len 128 -q)
"$QS" sensitivity --model "$M" --calib "$C" "${Q[@]}" --palette "$PALETTE" --score output-error,kl-probe \
  --probe-windows "$PW" --probe-ctx "$PC" --output-dir "$OUT/s" >"$OUT/sensitivity.out"
for b in 3 4; do "$QS" quantize --model "$M" --calib "$C" "${Q[@]}" --bits $b --group-size 128 --output-dir "$OUT/u$b" >/dev/null; done
exact() {  # bits per weight of a quantized.h5, exactly (codes + fp16 scale + b-bit zero per group)
  /usr/bin/python3 -c "
import sys, h5py
f = h5py.File(sys.argv[1]); b = p = 0
for g in f['layers'].values():
    o, i, k, gs = (int(g.attrs[x]) for x in ('out_features', 'in_features', 'bits', 'group_size'))
    b += o * i * k + o * -(-i // gs) * (16 + k); p += o * i
print(repr(b / p))" "$1"
}
B3=$(exact "$OUT/u3/quantized.h5"); B4=$(exact "$OUT/u4/quantized.h5")
kl() { "$QS" eval --model "$M" --data "$2" --quantized "$1" --kl-divergence -q --output-dir "$1/eval-$(basename "$2" .txt)" |
       sed -n 's/^kl-divergence: \([^ ]*\).*/\1/p'; }
: >"$OUT/rows.tsv"
for q in u3 u4; do printf 'uniform\t%s\t%s\t%s\t\n' "$q" "$(kl "$OUT/$q" "$OUT/test.txt")" "$(kl "$OUT/$q" "$OUT/lic.txt")" >>"$OUT/rows.tsv"; done
for b in $B3 3.5 $B4; do
  for sc in kl-probe output-error; do
    "$QS" allocate --sensitivity "$OUT/s" --target-avg-bits "$b" --score "$sc" --output "$OUT/plan-$sc-$b.json" >/dev/null
    "$QS" quantize --model "$M" --calib "$C" "${Q[@]}" --plan "$OUT/plan-$sc-$b.json" --output-dir "$OUT/q-$sc-$b" >/dev/null
    printf '%s\t%s\t%s\t%s\t%s\n' "$sc" "$b" "$(kl "$OUT/q-$sc-$b" "$OUT/test.txt")" "$(kl "$OUT/q-$sc-$b" "$OUT/lic.txt")" \
      "$OUT/plan-$sc-$b.json" >>"$OUT/rows.tsv"
  done
done
/usr/bin/python3 - "$OUT" "$B3" "$B4" <<'PY'
import json, sys
out, b3, b4 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/rows.tsv")]
uni = {r[1]: (float(r[2]), float(r[3])) for r in rows if r[0] == "uniform"}
print(f"| budget | uniform (kjv-test / licenses) | kl-probe plan | predicted | output-error plan |\n|---|---:|---:|---:|---:|")
pts = []
for b in sorted({float(r[1]) for r in rows if r[0] != "uniform"}):
    got = {r[0]: r for r in rows if r[0] != "uniform" and float(r[1]) == b}
    kp, oe = got["kl-probe"], got["output-error"]
    pred = json.load(open(kp[4]))["allocation"]["predicted_score"]
    pts.append((pred, float(kp[2])))
    if abs(b - b3) < 1e-9: u = "%.5f / %.5f" % uni["u3"]
    elif abs(b - b4) < 1e-9: u = "%.5f / %.5f" % uni["u4"]
    else:
        t = (b - b3) / (b4 - b3)
        u = "%.5f / %.5f (the line)" % tuple(uni["u3"][i] + t * (uni["u4"][i] - uni["u3"][i]) for i in range(2))
    print(f"| {b:.6f} | {u} | {float(kp[2]):.5f} / {float(kp[3]):.5f} | {pred:.5f} | {float(oe[2]):.5f} / {float(oe[3]):.5f} |")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter([p for p, _ in pts], [m for _, m in pts])
    hi = max(max(p, m) for p, m in pts) * 1.1
    ax.plot([0, hi], [0, hi], "k--", lw=0.8)
    ax.set_xlabel("predicted (sum of per-layer probe KL)")
    ax.set_ylabel("measured KL on kjv-test")
    fig.tight_layout()
    fig.savefig(f"{out}/predicted_vs_measured.png", dpi=120)
    print(f"plot: {out}/predicted_vs_measured.png")
except ImportError:
    print("(no matplotlib: no plot)")
PY
grep Spearman "$OUT/sensitivity.out"
