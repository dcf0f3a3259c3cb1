#!/usr/bin/env python3
"""blockap_curves.py — Block-AP's training curves per block (issue 16) from one or more
`qsweep quantize --method blockap` outputs (a quantized.h5, or the folder holding it, or a sweep
cell folder): one panel per block with the training loss of every step (the batch's MSE before the
step) and the validation loss after each epoch (when --val-windows was set), each run a colour;
SGRA's budget (epochs, S) in the panel title when the run had --budget-from.
Run: /usr/bin/python3 analysis/blockap_curves.py OUT.png RUN [RUN ...] [--labels a,b]
"""
import argparse
import math
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def open_run(path):
    f = os.path.join(path, "quantized.h5") if os.path.isdir(path) else path
    if not os.path.exists(f):
        sys.exit(f"blockap_curves.py: {f}: no such file (expected a quantized.h5 or its folder)")
    h = h5py.File(f, "r")
    m = h.attrs.get("method", b"")
    m = m.decode() if isinstance(m, bytes) else m
    if m != "blockap":
        sys.exit(f"blockap_curves.py: {f}: method {m!r}, not blockap (no training curves)")
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--labels", default="")
    a = ap.parse_args()
    labels = a.labels.split(",") if a.labels else [os.path.basename(os.path.normpath(r)) for r in a.runs]
    if len(labels) != len(a.runs):
        sys.exit("blockap_curves.py: --labels needs one label per run")
    runs = [open_run(r) for r in a.runs]
    n = len(runs[0]["blocks"])
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for b in range(n):
        ax = axes[b // cols][b % cols]
        title = f"block {b}"
        for k, (h, lab) in enumerate(zip(runs, labels)):
            g = h[f"blocks/{b}"]
            tl = g["train_loss"][:]
            ep = int(g.attrs["train_epochs"])
            ax.plot(range(1, len(tl) + 1), tl, color=f"C{k}", lw=1, label=f"{lab} train")
            if "val_loss" in g:
                vl = g["val_loss"][:]
                per = len(tl) / max(ep, 1)
                ax.plot([per * (e + 1) for e in range(len(vl))], vl, "o--", color=f"C{k}", ms=4, label=f"{lab} validation")
            if "budget_s" in g.attrs:
                title += f" | {lab}: S={g.attrs['budget_s']:.2f}, {ep} ep"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("block output MSE")
        ax.set_yscale("log")
        if b == 0:
            ax.legend(fontsize=7)
    for b in range(n, rows * cols):
        axes[b // cols][b % cols].axis("off")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}: {n} blocks, {len(runs)} run(s)")


if __name__ == "__main__":
    main()
