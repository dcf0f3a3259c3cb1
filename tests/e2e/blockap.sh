#!/usr/bin/env bash
# blockap.sh — Block-AP (issue 16) on the demo model, W2 g64: 1, 2 and 3 ranks store identical
# files (training is data-parallel with per-window gradients summed in a fixed order); the
# per-block training curves are stored (a step per batch, a validation loss per epoch, early
# stopping by --patience); with the default learning rates it beats RTN's KL on
# held-out text; --init gptq/awq with zero learning rates stores that method's grid exactly; SGRA
# (--budget-from) gives each block the epochs and learning rate of the rule from fisher scores;
# options that do not apply stop quantize with a clear error and no output.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
head -c 20000 "$SRC/demo/data/kjv-test.txt" >"$tmp/test.txt"
Q=(--model "$M" --calib "$SRC/demo/data/kjv-train.txt" --bits 2 --group-size 64 --n-calib 16 --seq-len 128 -q)
B=(--method blockap --val-windows 2)
"$QS" quantize "${Q[@]}" "${B[@]}" --output-dir "$tmp/b1" >"$tmp/b1.out" 2>&1 || bad "blockap 1 rank: $(cat "$tmp/b1.out")"
for n in 2 3; do
  "${MPIRUN[@]}" -n $n "$QS" quantize "${Q[@]}" "${B[@]}" --output-dir "$tmp/b$n" >"$tmp/b$n.out" 2>&1 || bad "blockap $n ranks: $(cat "$tmp/b$n.out")"
  a="$tmp/b1/quantized.h5" b="$tmp/b$n/quantized.h5"
  [ $n = 3 ] && a="$tmp/b1" b="$tmp/b3"  # qsweep diff also takes two quantize output folders
  "$QS" diff "$a" "$b" >"$tmp/d$n" 2>&1 && ok "blockap: 1 rank = $n ranks (diff $(basename "$a") $(basename "$b"))" || bad "1 vs $n ranks: $(head -3 "$tmp/d$n")"
done
"$QS" quantize "${Q[@]}" --method rtn --output-dir "$tmp/r" >/dev/null 2>&1 || bad "rtn"
for d in b1 r; do
  "$QS" eval --model "$M" --data "$tmp/test.txt" --quantized "$tmp/$d" --ctx 128 --kl-divergence -q --output-dir "$tmp/e-$d" >/dev/null 2>&1 || bad "eval $d"
done
if /usr/bin/python3 - "$tmp" >"$tmp/py.out" 2>&1 <<'PY'
import sys, h5py
t = sys.argv[1]
f = h5py.File(f"{t}/b1/quantized.h5")
assert (f.attrs["method"].decode() if isinstance(f.attrs["method"], bytes) else f.attrs["method"]) == "blockap"
for b in range(4):
    g = f[f"blocks/{b}"]
    tl, vl = g["train_loss"][:], g["val_loss"][:]
    assert len(tl) == 2 * 7 and len(vl) == 2 == g.attrs["train_epochs"], (len(tl), len(vl))  # 14 windows / batch 2, 2 epochs
    assert vl[-1] < tl[0], (b, tl[0], vl)
kl = {d: float(h5py.File(f"{t}/e-{d}/eval.h5").attrs["kl_divergence"]) for d in ("b1", "r")}
assert kl["b1"] < 0.9 * kl["r"], kl
print(f"KL rtn {kl['r']:.5f}, blockap {kl['b1']:.5f}")
PY
then ok "curves stored per block; blockap's KL below RTN's: $(tail -1 "$tmp/py.out" 2>/dev/null)"
else bad "blockap curves or KL: $(cat "$tmp/py.out")"; fi
/usr/bin/python3 "$SRC/analysis/blockap_curves.py" "$tmp/curves.png" "$tmp/b1" "$tmp/b2/quantized.h5" --labels 1rank,2ranks >"$tmp/pl.out" 2>&1 &&
  [ -s "$tmp/curves.png" ] && ok "analysis/blockap_curves.py: $(cat "$tmp/pl.out")" || bad "curves plot: $(cat "$tmp/pl.out")"
/usr/bin/python3 "$SRC/analysis/blockap_curves.py" "$tmp/x.png" "$tmp/r" >"$tmp/pl.out" 2>&1
[ $? -ne 0 ] && grep -q "not blockap" "$tmp/pl.out" && ok "the curves plot refuses an rtn output" || bad "curves plot of rtn: $(cat "$tmp/pl.out")"
"$QS" quantize "${Q[@]}" --method blockap --val-windows 2 --epochs 5 --patience 1 --weight-lr 0 --quant-lr 0 --output-dir "$tmp/p" >/dev/null 2>&1 &&
  /usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert all(f[f'blocks/{b}'].attrs['train_epochs'] == 2 for b in range(4))" "$tmp/p/quantized.h5" &&
  ok "--patience 1 stops when the validation loss does not fall" || bad "patience"
# --init gptq|awq with zero learning rates: training starts (and here ends) exactly at that method's result.
S=(--model "$M" --calib "$SRC/demo/data/kjv-train.txt" --bits 3 --group-size 64 --n-calib 8 --seq-len 64 -q)
for m in gptq awq; do
  "$QS" quantize "${S[@]}" --method $m --output-dir "$tmp/i-$m" >/dev/null 2>&1 || bad "$m"
  "${MPIRUN[@]}" -n 2 "$QS" quantize "${S[@]}" --method blockap --init $m --weight-lr 0 --quant-lr 0 --epochs 1 --output-dir "$tmp/ib-$m" >"$tmp/ib.out" 2>&1 || bad "blockap --init $m: $(cat "$tmp/ib.out")"
done
if /usr/bin/python3 - "$tmp" >"$tmp/py.out" 2>&1 <<'PY'
import sys, h5py, numpy as np
t = sys.argv[1]
for m in ("gptq", "awq"):
    a, b = h5py.File(f"{t}/i-{m}/quantized.h5"), h5py.File(f"{t}/ib-{m}/quantized.h5")
    n = 0
    for blk in range(4):
        for k in ("input_layernorm", "post_attention_layernorm"):
            assert np.array_equal(a[f"blocks/{blk}/{k}"][:], b[f"blocks/{blk}/{k}"][:]), (m, blk, k)
    for name in a["layers"]:
        for k in ("codes", "scales", "zeros"):
            assert np.array_equal(a[f"layers/{name}/{k}"][:], b[f"layers/{name}/{k}"][:]), (m, name, k)
            n += 1
    assert n == 28 * 3 and b.attrs["blockap_init"] in (m, m.encode()), n
print("codes, scales, zeros and norms equal")
PY
then ok "--init gptq / awq with zero learning rates store the method's own grid ($(tail -1 "$tmp/py.out"))"
else bad "--init: $(cat "$tmp/py.out")"; fi

# SGRA: per-block budgets from a sensitivity output (fisher scores), recorded per block.
"$QS" sensitivity "${S[@]}" --method rtn --palette 3:64 --score output-error,fisher --fisher-windows 4 --output-dir "$tmp/sens" >/dev/null 2>&1 || bad "sensitivity"
"$QS" quantize "${S[@]}" --method blockap --budget-from "$tmp/sens" --output-dir "$tmp/sg" >"$tmp/sg.out" 2>&1 || bad "--budget-from: $(cat "$tmp/sg.out")"
if /usr/bin/python3 - "$tmp" >"$tmp/py.out" 2>&1 <<'PY'
import sys, h5py, numpy as np
t = sys.argv[1]
s = h5py.File(f"{t}/sens/sensitivity.h5")
names = [n.decode() if isinstance(n, bytes) else n for n in s["layers/name"][:]]
fisher = s["scores/fisher"][:]
blk = np.array([np.mean([f for n, f in zip(names, fisher) if n.startswith(f"model.layers.{b}.")]) for b in range(4)])
S = (blk - blk.min()) / (blk.max() - blk.min())
f = h5py.File(f"{t}/sg/quantized.h5")
for b in range(4):
    g = f[f"blocks/{b}"]
    want = max(1, int(np.floor(2 * (1 + S[b]) + 0.5)))
    assert abs(g.attrs["budget_s"] - S[b]) < 1e-12, (b, g.attrs["budget_s"], S[b])
    assert g.attrs["budget_epochs"] == want == g.attrs["train_epochs"], (b, want, g.attrs["train_epochs"])
    assert abs(g.attrs["weight_lr"] - 3e-4 * (1 + 0.5 * (S[b] - 0.5))) < 1e-15, g.attrs["weight_lr"]
    assert len(g["train_loss"]) == want * 4, len(g["train_loss"])  # 8 windows / batch 2
print("epochs", [int(f[f"blocks/{b}"].attrs["train_epochs"]) for b in range(4)], "S", np.round(S, 3).tolist())
PY
then ok "SGRA budgets follow the rule from the fisher scores: $(tail -1 "$tmp/py.out")"
else bad "SGRA: $(cat "$tmp/py.out")"; fi

check() {  # check NAME EXPECTED ARGS...
  local name=$1 want=$2; shift 2
  if "$QS" quantize "${Q[@]}" --output-dir "$tmp/bad" "$@" >"$tmp/o" 2>"$tmp/e"; then bad "$name accepted"
  elif grep -qF -- "$want" "$tmp/e" && [ ! -e "$tmp/bad" ]; then ok "$name: $(head -1 "$tmp/e")"
  else bad "$name: $(cat "$tmp/e")"; fi
}
check "no epochs" "must be at least 1" --method blockap --epochs 0
check "blockap option with rtn" "apply to --method blockap only" --method rtn --weight-lr 1e-4
check "no-propagate" "--no-propagate does not apply" --method blockap --no-propagate
check "patience without validation" "--patience needs --val-windows" --method blockap --patience 2
check "all windows held out" "at least one window must be left for training" --method blockap --val-windows 16
check "sym" "--sym does not apply" --method blockap --sym
check "unknown init" "--init 'best' is not known" --method blockap --init best
check "budget score alone" "need --budget-from" --method blockap --budget-score fisher
check "missing budget file" "$tmp/nope" --method blockap --budget-from "$tmp/nope"
check "not a sensitivity file" "not a qsweep sensitivity.h5" --method blockap --budget-from "$tmp/i-gptq/quantized.h5" --budget-score fisher
exit $fail
