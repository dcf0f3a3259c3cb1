#!/usr/bin/env bash
# smollm2_figures.sh — the README's SmolLM2-135M-Instruct figures, end to end (about 1.5 h on a
# 2-core VM): full precision against llama.cpp's and PyTorch's reference figures, then
# RTN/AWQ/GPTQ at W4 and W3 g128 (576 = 4 x 128 + 64: each row's last group holds 64 columns)
# with 128 and with 32 calibration windows of kjv-train, evaluated on kjv-test (in domain) and on
# demo/data/licenses.txt (another domain: legal English), perplexity, KL and top-1 agreement
# against full precision on kjv-test, perplexity on the other text.
# Prints one Markdown table; results stay in $OUT.
#   bash bench/smollm2_figures.sh            (after scripts/build.sh; QS=..., OUT=... to change;
#   CALIB=FILE calibrates on another text, PROTOCOLS="gptq" skips the llama.cpp-protocol FP run)
set -euo pipefail
cd "$(dirname "$0")/.."
QS=${QS:-$PWD/build/qsweep}
M=$PWD/build/models/smollm2
OUT=${OUT:-$PWD/results/smollm2-figures}
SH=${QSWEEP_SHARED_DIR:-$PWD/../shared}
MPI=(mpirun --allow-run-as-root --oversubscribe -n 2)
bash "$SH/models/smollm2/make.sh" "$M"
mkdir -p "$OUT"
TEST=$PWD/demo/data/kjv-test.txt OTHER=$PWD/demo/data/licenses.txt
CALIB=${CALIB:-$PWD/demo/data/kjv-train.txt}

# 1. Full precision, both protocols, whole kjv-test (reference.json: llama.cpp 16.6551, PyTorch 21.4809).
for p in ${PROTOCOLS:-llamacpp gptq}; do
  [ -s "$OUT/fp-$p/eval.h5" ] || "${MPI[@]}" "$QS" eval --model "$M" --data "$TEST" --ctx 256 --protocol $p -q \
    --output-dir "$OUT/fp-$p" | tee "$OUT/fp-$p.txt"
done

# 2. The grid: one sweep, grown from 128 to 32 windows with --resume (rtn takes no calibration).
job() {  # job NAME METHODS NCALIB
  cat >"$OUT/$1.ini" <<INI
model = $M
calib = $CALIB
eval  = $TEST
[quantize]
method     = $2
bits       = 4, 3
group-size = 128
n-calib    = $3
seq-len    = 256
[eval]
ctx = 256
kl-divergence = true
INI
}
job c128 "rtn, awq, gptq" 128
job c32 "awq, gptq" 32
for j in c128 c32; do
  "${MPI[@]}" "$QS" run "$OUT/$j.ini" --output-dir "$OUT/$j" $( [ -e "$OUT/$j/sweep.json" ] && echo --resume ) -q
done

# 3. Every quantized model and full precision on the other-domain text (perplexity only: KL would
#    rerun the full-precision model beside each one).
for d in "$OUT"/c128/cells/* "$OUT"/c32/cells/*; do
  [ -s "$d/other/eval.h5" ] || "${MPI[@]}" "$QS" eval --model "$M" --data "$OTHER" --ctx 256 --quantized "$d" \
    -q --output-dir "$d/other" >"$d/other.txt"
done
[ -s "$OUT/fp-other/eval.h5" ] || "${MPI[@]}" "$QS" eval --model "$M" --data "$OTHER" --ctx 256 -q --output-dir "$OUT/fp-other" >"$OUT/fp-other.txt"

# 4. The table.
/usr/bin/python3 - "$OUT" <<'PY'
import h5py, os, sys, glob
out = sys.argv[1]
def attrs(p):
    with h5py.File(p, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
fp_t = attrs(f"{out}/fp-gptq/eval.h5")["perplexity"]
fp_o = attrs(f"{out}/fp-other/eval.h5")["perplexity"]
print("| method | config | calib windows | ppl kjv-test | KL kjv-test | top-1 kjv-test | ppl licenses |")
print("|---|---|---|---|---|---|---|")
print(f"| full precision | fp32 | - | {fp_t:.4f} | 0 | 1 | {fp_o:.4f} |")
rows = []
for d in sorted(glob.glob(f"{out}/c*/cells/*")):
    q = attrs(f"{d}/quantized.h5")
    e = attrs(f"{d}/cell.h5") if os.path.exists(f"{d}/cell.h5") else {}
    o = attrs(f"{d}/other/eval.h5")
    method, bits = q.get("method"), int(q.get("bits"))
    n = int(q.get("n_calib", 0))
    rows.append((-bits, ["rtn", "awq", "gptq"].index(method), -n,
                 f"| {method} | W{bits} g128 | {n if method != 'rtn' else '-'} | {e.get('perplexity', float('nan')):.4f} | "
                 f"{e.get('kl_divergence', float('nan')):.5f} | {e.get('top1_agreement', float('nan')):.4f} | {o['perplexity']:.4f} |"))
for r in sorted(rows):
    print(r[3])

# Paired per-window comparison against RTN at the same bits (kjv-test): mean difference of the
# windows' mean NLL (method - rtn; negative = better), its 95% t interval, windows won.
import numpy as np
def windows(d):
    with h5py.File(f"{d}/eval.h5", "r") as f:
        g = f["windows"]
        return g["nll_sum"][()] / g["scored"][()], g["kl_sum"][()] / g["scored"][()]
cells = {}
for d in sorted(glob.glob(f"{out}/c*/cells/*")):
    q = attrs(f"{d}/quantized.h5")
    cells[(q["method"], int(q["bits"]), int(q["n_calib"]))] = d
print()
print("| method | bits | calib | ΔNLL vs rtn (95% CI) | windows better | ΔKL vs rtn (95% CI) |")
print("|---|---|---|---|---|---|")
for (m, b, n), d in sorted(cells.items()):
    if m == "rtn" or ("rtn", b, 128) not in cells:
        continue
    nll, kl = windows(d)
    rn, rk = windows(cells[("rtn", b, 128)])
    def ci(x):
        se = x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():+.4f} ({x.mean() - 1.96 * se:+.4f}, {x.mean() + 1.96 * se:+.4f})"
    print(f"| {m} | W{b} | {n} | {ci(nll - rn)} | {(nll < rn).sum()} of {len(nll)} | {ci(kl - rk)} |")
PY
