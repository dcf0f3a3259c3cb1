#!/usr/bin/env bash
# blockap_sgra.sh — issue 16's SGRA measurement: the fisher sensitivity of kjv-llama-outliers at
# W2 g64, then jobs/blockap-sgra.ini (uniform Block-AP at 1, 2, 3 epochs per block against SGRA at
# base 1 and 2) on 2 ranks, and a Markdown table: total epochs over the blocks (each block's
# train_epochs), quantize seconds, perplexity and KL on kjv-test and the license texts.
#   bash bench/blockap_sgra.sh        (about 10 minutes on a 2-core VM)
set -euo pipefail
cd "$(dirname "$0")/.."
QS=${QS:-build/qsweep}
SH=${QSWEEP_SHARED_DIR:-../shared}
MPI=(mpirun --allow-run-as-root --oversubscribe -n 2)
"${MPI[@]}" "$QS" sensitivity --model "$SH/models/kjv-llama-outliers/fp32" --calib "$SH/data/kjv-train.txt" --method rtn \
  --n-calib 64 --seq-len 256 --palette 2:64 --score output-error,fisher -q --output-dir results/sgra-sens
"${MPI[@]}" "$QS" run jobs/blockap-sgra.ini -q --resume
/usr/bin/python3 - results/blockap-sgra <<'PY'
import sys, glob, h5py
d = sys.argv[1]
f = h5py.File(f"{d}/sweep.h5")
print("| arm | total epochs (4 blocks) | quantize s | ppl kjv-test | KL kjv-test | ppl licenses | KL licenses |")
print("|---|---:|---:|---:|---:|---:|---:|")
for n in f["cells"]:
    g = f["cells"][n]
    lab = g.attrs["label"].decode() if isinstance(g.attrs["label"], bytes) else g.attrs["label"]
    q = h5py.File(glob.glob(f"{d}/cells/{n.split('-', 1)[1] if '-' in n else n}/quantized.h5")[0]) if False else None
    blocks = g["quantized/blocks"]
    ep = sum(int(blocks[b].attrs["train_epochs"]) for b in blocks)
    ev = [g[k] for k in sorted(g) if k.startswith("eval")]
    cols = []
    for e in ev:
        cols += [f"{e.attrs['perplexity']:.3f}", f"{e.attrs['kl_divergence']:.4f}"]
    print(f"| {lab} | {ep} | {g['quantized'].attrs.get('seconds', float('nan')):.1f} | " + " | ".join(cols) + " |")
PY
