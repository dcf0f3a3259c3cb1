#!/usr/bin/env bash
# zones.sh — criticality zones (issue 14) on the demo model: `qsweep zones` reads the statistics of
# `qsweep calibrate` (and the sensitivity scores); every feature in zones.csv equals an independent
# h5py computation from stats.h5 / sensitivity.h5, the zone of each block follows the rule it
# prints (recomputed here), the plan it writes is read by `quantize --plan` (each block's layers at
# its zone's bits), and bad input (a file without /blocks, bad --zone-bits) is a clear error.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
token_cache_in "$tmp"  # the calibration text is read by many runs
M="$SRC/demo/kjv-llama"
C="$SRC/demo/data/kjv-train.txt"
"$QS" calibrate --model "$M" --calib "$C" --n-calib 8 --seq-len 64 -q --output-dir "$tmp/c" >/dev/null 2>&1 || bad "calibrate"
"$QS" sensitivity --model "$M" --calib "$C" --method rtn --n-calib 8 --seq-len 64 --palette 3:128,4:128 -q --output-dir "$tmp/s" >/dev/null 2>&1 || bad "sensitivity"
"$QS" zones --stats "$tmp/c/stats.h5" --sensitivity "$tmp/s" --output-dir "$tmp/z" --plan "$tmp/plan.json" \
  --sparsity-above 0.06 >"$tmp/z.out" 2>&1 || bad "zones: $(cat "$tmp/z.out")"
if /usr/bin/python3 - "$tmp/c/stats.h5" "$tmp/s/sensitivity.h5" "$tmp/z/zones.csv" "$tmp/plan.json" <<'PY'
import csv, json, sys, h5py, numpy as np
st, se = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
rows = list(csv.DictReader(open(sys.argv[3])))
plan = json.load(open(sys.argv[4]))
names = [n.decode() for n in se["layers/name"][:]]
err = se["scores/output_error"][:].reshape(len(names), -1)[:, 0]  # the 3:128 column
blocks = sorted(int(b) for b in st["blocks"])
assert [int(r["block"]) for r in rows] == blocks
sens = {b: sum(e for n, e in zip(names, err) if n.startswith(f"model.layers.{b}.")) for b in blocks}
ins = ("qkv", "o_proj", "gate_up", "down_proj")
feat = {}
for b in blocks:
    g = st[f"blocks/{b}"]
    ent = g["attention_entropy"][:]
    feat[b] = dict(sparsity=float(g["stats/down_proj"].attrs["sparsity"]),
                   max_excess_kurtosis=max(float(g[f"stats/{i}"].attrs["excess_kurtosis"]) for i in ins),
                   max_abs=max(float(g[f"stats/{i}/max_abs"][:].max()) for i in ins),
                   mean_attention_entropy=float(ent.mean()), specialised_heads=float((ent < 1.0).mean()),
                   sensitivity=sens[b])
mx, sm = np.median([f["max_abs"] for f in feat.values()]), np.median([f["sensitivity"] for f in feat.values()])
for r in rows:
    f = feat[int(r["block"])]
    for k, v in f.items():
        assert np.isclose(float(r[k]), v, rtol=1e-9, atol=1e-12), (r["block"], k, r[k], v)
    sig = [s for s, on in (("sparsity", f["sparsity"] > 0.06), ("entropy", f["mean_attention_entropy"] < 1.0),
                           ("max_abs", f["max_abs"] > 4 * mx), ("sensitivity", f["sensitivity"] > 2 * sm)) if on]
    assert r["signals"] == "+".join(sig), (r["block"], r["signals"], sig)
    zone = "safe" if not sig else "transition" if len(sig) == 1 else "critical"
    assert r["zone"] == zone
    want = {"safe": 2, "transition": 3, "critical": 4}[zone]
    for k, v in plan["layers"].items():
        if k.startswith(f"model.layers.{r['block']}."):
            assert v["bits"] == want and v["group_size"] == 128, (k, v)
assert len(plan["layers"]) == 7 * len(blocks)
print("zones:", ", ".join(f"{r['block']}:{r['zone']}" for r in rows))
PY
then ok "zones.csv features and zones equal an independent computation; the plan gives each zone its bits"
else bad "zones: $(cat "$tmp/z.out")"; fi
grep -q '^Rule: one signal each for: MLP activation sparsity > 0.06' "$tmp/z/zones.md" && grep -q '<svg class="plot"' "$tmp/z/zones.html" &&
  ok "the rule is written out; plots" || bad "zones.md/html"
"$QS" quantize --model "$M" --calib "$C" --method rtn --n-calib 8 --seq-len 64 --plan "$tmp/plan.json" -q --output-dir "$tmp/q" >/dev/null 2>&1 &&
  ok "quantize --plan reads the zones plan" || bad "quantize --plan of the zones plan"
if "$QS" zones --stats "$tmp/s/sensitivity.h5" --output-dir "$tmp/bad" >/dev/null 2>"$tmp/e"; then bad "a file without /blocks accepted"
elif grep -q "no /blocks" "$tmp/e" && [ ! -e "$tmp/bad" ]; then ok "no /blocks: $(head -1 "$tmp/e")"; else bad "no /blocks: $(cat "$tmp/e")"; fi
if "$QS" zones --stats "$tmp/c/stats.h5" --zone-bits safe:2,critical:4 --output-dir "$tmp/bad" >/dev/null 2>"$tmp/e"; then bad "bad --zone-bits accepted"
elif grep -q "give bits for safe, transition and critical" "$tmp/e" && [ ! -e "$tmp/bad" ]; then ok "bad --zone-bits: $(head -1 "$tmp/e")"; else bad "zone-bits: $(cat "$tmp/e")"; fi
exit $fail
