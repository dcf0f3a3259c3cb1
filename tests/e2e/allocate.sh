#!/usr/bin/env bash
# allocate.sh — mixed precision (issue 14, first part) on the demo model: `qsweep sensitivity`
# scores every linear on a palette (output-error; 1 and 2 ranks write the same scores), `qsweep
# allocate` picks a plan exactly at the budget of uniform W3 g128, `qsweep quantize --plan` of it
# stores exactly the size allocate reported (never above the budget, within 0.5% of it), and with
# --no-propagate (the inputs sensitivity scored on) its summed output error is the score allocate
# predicted, no more than uniform W3 g128's. Bad budgets (negative, below the smallest model, above the
# full model, none, two) stop allocate with a clear error and no plan file. The fisher score
# (issue 16: empirical Fisher from backward passes) is computed alongside, 1 = 2 ranks bit for bit
# (5 windows: an uneven deal), monotone in bits; allocate --score fisher plans by it; fisher with
# awq or --fisher-windows 0 is refused.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
C="$SRC/demo/data/kjv-train.txt"
common=(--model "$M" --calib "$C" --method rtn --n-calib 8 --seq-len 64 --palette 2:64,3:64,3:128,4:128,8:128 -q --score output-error,fisher --fisher-windows 5)
"$QS" sensitivity "${common[@]}" --output-dir "$tmp/s1" >"$tmp/s1.out" 2>&1 || bad "sensitivity: $(cat "$tmp/s1.out")"
"${MPIRUN[@]}" -n 2 "$QS" sensitivity "${common[@]}" --output-dir "$tmp/s2" >"$tmp/s2.out" 2>&1 || bad "sensitivity, 2 ranks"
if /usr/bin/python3 - "$tmp/s1/sensitivity.h5" "$tmp/s2/sensitivity.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
e = a["scores/output_error"][:].reshape(len(a["layers/name"]), len(a["palette/bits"]))
assert np.array_equal(e, b["scores/output_error"][:].reshape(e.shape)), "1 vs 2 ranks"
assert e.shape == (28, 5) and (e > 0).all()
# more bits, less error (same group 128: columns 2, 3, 4), finer groups help at 3 bits
assert (e[:, 2] > e[:, 3]).all() and (e[:, 3] > e[:, 4]).all() and (e[:, 1] <= e[:, 2] * 1.0001).all()
f = a["scores/fisher"][:].reshape(e.shape)
assert np.array_equal(f, b["scores/fisher"][:].reshape(e.shape)), "fisher: 1 vs 2 ranks"
assert (f > 0).all() and (f[:, 2] > f[:, 3]).all() and (f[:, 3] > f[:, 4]).all(), "fisher monotone in bits"
assert a["scores/fisher"].attrs["windows"] == 5 and a["scores/fisher"].attrs["ctx"] == 64
print(f"scores {e.shape}, W3g128 mean {e[:, 2].mean():.4g}, fisher mean {f[:, 2].mean():.4g}")
PY
then ok "sensitivity: 28 layers x 5 candidates, output-error and fisher, 1 = 2 ranks, monotone in bits"; else bad "sensitivity scores"; fi
"$QS" allocate --sensitivity "$tmp/s1" --target-avg-bits 3.5 --score fisher --output "$tmp/planf.json" >"$tmp/af.out" 2>&1 &&
  grep -q '"score": "fisher"' "$tmp/planf.json" && ok "allocate --score fisher" || bad "allocate --score fisher: $(cat "$tmp/af.out"; head -c 400 "$tmp/planf.json")"
for bad_args in "--method awq --score fisher|applies\|not supported" "--method rtn --score fisher --fisher-windows 0|must be at least 1"; do
  args=${bad_args%%|*} want=${bad_args#*|}
  if "$QS" sensitivity --model "$M" --calib "$C" --n-calib 8 --seq-len 64 --palette 3:128 -q $args --output-dir "$tmp/sbad" >"$tmp/sb.out" 2>&1; then bad "accepted: $args"
  elif grep -q "$want" "$tmp/sb.out" && [ ! -e "$tmp/sbad" ]; then ok "refused: $args: $(grep error "$tmp/sb.out" | head -1)"
  else bad "$args: $(cat "$tmp/sb.out")"; fi
done

# The exact budget of uniform W3 g128.
"$QS" quantize --model "$M" --calib "$C" --method rtn --bits 3 --group-size 128 --n-calib 8 --seq-len 64 --no-propagate -q --output-dir "$tmp/u3" >"$tmp/u3.out" 2>&1 || bad "uniform quantize"
b3=$(sed -n 's/^bits per quantized weight: \([0-9.]*\).*/\1/p' "$tmp/u3.out")
"$QS" allocate --sensitivity "$tmp/s1" --target-avg-bits "$b3" --output "$tmp/plan.json" >"$tmp/a.out" 2>&1 || bad "allocate: $(cat "$tmp/a.out")"
"$QS" quantize --model "$M" --calib "$C" --method rtn --n-calib 8 --seq-len 64 --plan "$tmp/plan.json" --no-propagate -q --output-dir "$tmp/q" >"$tmp/q.out" 2>&1 || bad "quantize --plan: $(cat "$tmp/q.out")"
if /usr/bin/python3 - "$tmp/plan.json" "$tmp/q/quantized.h5" "$tmp/u3/quantized.h5" "$tmp/s1/sensitivity.h5" "$b3" <<'PY'
import json, sys, h5py, numpy as np
plan, q, u, s = json.load(open(sys.argv[1])), h5py.File(sys.argv[2]), h5py.File(sys.argv[3]), h5py.File(sys.argv[4])
budget = float(sys.argv[5])
al = plan["allocation"]
bits = lambda f: sum(int(g.attrs["out_features"]) * int(g.attrs["in_features"]) * int(g.attrs["bits"]) +
                     int(g.attrs["out_features"]) * -(-int(g.attrs["in_features"]) // int(g.attrs["group_size"])) * (16 + int(g.attrs["bits"]))
                     for g in f["layers"].values())
params = sum(int(g.attrs["out_features"]) * int(g.attrs["in_features"]) for g in q["layers"].values())
assert bits(q) == al["size_bits"], (bits(q), al["size_bits"])
assert al["size_bits"] <= budget * params + 1e-6, "over budget"
assert al["size_bits"] >= 0.995 * budget * params, "not within 0.5% of the budget"
err = sum(float(g.attrs["output_error"]) for g in q["layers"].values())
uerr = sum(float(g.attrs["output_error"]) for g in u["layers"].values())
assert abs(err / al["predicted_score"] - 1) < 1e-6, (err, al["predicted_score"])
assert err <= uerr * (1 + 1e-9), (err, uerr)
kinds = {(v["bits"], v["group_size"]) for v in plan["layers"].values()}
print(f"{len(plan['layers'])} layers, {len(kinds)} kinds; {al['bits_per_weight']:.6f} bits/weight (budget {budget}); "
      f"summed output error {err:.6g} vs uniform W3 g128 {uerr:.6g}")
PY
then ok "allocate at the W3 g128 budget: quantize --plan stores exactly that size, error as predicted, no worse than uniform"
else bad "allocation: $(cat "$tmp/a.out")"; fi

# kl-probe: each layer x candidate alone, KL on 4 probe windows disjoint from the calibration windows.
kp=(--model "$M" --calib "$C" --method rtn --n-calib 8 --seq-len 64 --palette 3:128,8:128 --score output-error,kl-probe --probe-windows 4 -q)
"$QS" sensitivity "${kp[@]}" --output-dir "$tmp/k1" >"$tmp/k1.out" 2>&1 || bad "sensitivity kl-probe: $(cat "$tmp/k1.out")"
"${MPIRUN[@]}" -n 2 "$QS" sensitivity "${kp[@]}" --output-dir "$tmp/k2" >"$tmp/k2.out" 2>&1 || bad "sensitivity kl-probe, 2 ranks"
if /usr/bin/python3 - "$tmp/k1/sensitivity.h5" "$tmp/k2/sensitivity.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
k = a["scores/kl_probe"][:].reshape(28, 2)
assert np.array_equal(a["scores/kl_probe"][:], b["scores/kl_probe"][:]), "1 vs 2 ranks"
assert (k > 0).all() and (k[:, 0] > k[:, 1]).all(), "W3 probes must cost more than W8 probes"
assert int(a["scores/kl_probe"].attrs["probe_windows"]) == 4
print(f"kl-probe W3g128 mean {k[:, 0].mean():.3g}, W8 {k[:, 1].mean():.3g}")
PY
then ok "kl-probe: 28 x 2 probes, 1 = 2 ranks, W3 above W8 for every layer"; else bad "kl-probe scores"; fi
"$QS" allocate --sensitivity "$tmp/k1" --target-avg-bits 4 --output "$tmp/kplan.json" >"$tmp/ka.out" 2>&1 &&
  grep -q '"score": "kl-probe"' "$tmp/kplan.json" && ok "allocate uses kl-probe by default when present" || bad "allocate kl-probe: $(cat "$tmp/ka.out")"

check() {  # check NAME EXPECTED ARGS...
  local name=$1 want=$2; shift 2
  if "$QS" allocate --sensitivity "$tmp/s1" --output "$tmp/bad.json" "$@" >"$tmp/o" 2>"$tmp/e"; then bad "$name accepted"
  elif grep -qF "$want" "$tmp/e" && [ ! -e "$tmp/bad.json" ]; then ok "$name: $(head -1 "$tmp/e")"
  else bad "$name: $(cat "$tmp/e")"; fi
}
check negative "must be positive" --target-avg-bits -1
check below "below the smallest possible model" --target-avg-bits 2.0
check above "above the full model" --target-avg-bits 17
check above-mb "above the full model" --target-size-mb 1000
check none "give exactly one budget" 
check two "give exactly one budget" --target-avg-bits 3 --target-size-mb 3
check unscored "was not scored" --target-avg-bits 4 --palette 5:128
check no-kl "has no kl-probe scores" --target-avg-bits 4 --score kl-probe
exit $fail
