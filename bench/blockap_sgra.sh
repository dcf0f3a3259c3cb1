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
import csv, sys, h5py
d = sys.argv[1]
f = h5py.File(f"{d}/sweep.h5")
print("| arm | total epochs (4 blocks) | quantize s | ppl kjv-test | KL kjv-test | ppl licenses | KL licenses |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in csv.DictReader(open(f"{d}/summary.csv")):
    cell = next(f["cells"][n] for n in f["cells"] if f["cells"][n].attrs["id"].decode() == r["id"])
    ep = sum(int(b.attrs["train_epochs"]) for b in cell["quantized/blocks"].values())
    v = lambda k: float(r[k])  # noqa: E731
    print(f"| {r['label']} | {ep} | {v('quantize_seconds'):.1f} | {v('perplexity[kjv-test]'):.3f} | {v('kl_divergence[kjv-test]'):.4f} | "
          f"{v('perplexity[licenses]'):.1f} | {v('kl_divergence[licenses]'):.4f} |")
PY
