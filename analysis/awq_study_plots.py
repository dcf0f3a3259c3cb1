#!/usr/bin/env python3
"""awq_study_plots.py — the AWQ study's visualisations from a finished `qsweep run
jobs/awq-study.ini` directory (its cells/<id>/quantized.h5 and summary.csv):
  importance.png   per block, AWQ's L2 salience against Robust-PRAQ's importance of the gate/up
                   input channels (both normalised to mean 1, log-log), with their Spearman;
  rounding.png     per layer, each refinement's objective before and after (greedy: Σ|e| over
                   rows and groups; exact: Σ (w−ŵ)ᵀG(w−ŵ)), and the output error of AWQ vs AWQ +
                   greedy-exact;
  alpha.png        the α AWQ's scale search chose per layer, standard AWQ against PRAQ.
Prints the Spearman per block. Run: /usr/bin/python3 analysis/awq_study_plots.py DIR [--bits 3]
"""
import argparse
import csv
import os
import sys

import h5py
import numpy as np


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def layer_order(name):
    p = name.split(".")
    kinds = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return (int(p[2]), kinds.index(p[-1]) if p[-1] in kinds else 9) if len(p) > 3 else (1 << 30, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--bits", default="3")
    a = ap.parse_args()
    rows = [r for r in csv.DictReader(open(os.path.join(a.dir, "summary.csv")))
            if r["status"] == "complete" and r.get("quantize.bits") == a.bits]
    cells = {r["quantize.variant"]: h5py.File(os.path.join(a.dir, "cells", r["id"], "quantized.h5")) for r in rows}
    missing = {"awq", "greedy", "exact", "praq"} - set(cells)
    if missing:
        sys.exit(f"{a.dir}: no complete W{a.bits} cell for variant(s) {sorted(missing)}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = cells["praq"]
    blocks = sorted(p["blocks"], key=int)
    fig, axes = plt.subplots(1, len(blocks), figsize=(3.2 * len(blocks), 3.2), squeeze=False)
    for ax, b in zip(axes[0], blocks):
        st = p["blocks"][b]["stats/gate_up"]
        l2 = np.sqrt(st["sum_sq"][:] / st.attrs["tokens"])
        pr = st["praq_importance"][:]
        r = spearman(l2, pr)
        print(f"block {b}: Spearman(PRAQ importance, AWQ L2 salience) over {len(l2)} channels {r:.4f}")
        ax.loglog(l2 / l2.mean(), pr / pr.mean(), ".", ms=2)
        ax.set_title(f"block {b}: Spearman {r:.2f}", fontsize=9)
        ax.set_xlabel("AWQ L2 salience (norm.)")
    axes[0][0].set_ylabel("PRAQ importance (norm.)")
    fig.tight_layout()
    fig.savefig(os.path.join(a.dir, "importance.png"), dpi=110)

    names = sorted(cells["awq"]["layers"], key=layer_order)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    for ax, v in zip(axes[:2], ("greedy", "exact")):
        L = cells[v]["layers"]
        ax.semilogy(x, [L[n].attrs["refine_objective_before"] for n in names], label="before")
        ax.semilogy(x, [L[n].attrs["refine_objective_after"] for n in names], label="after")
        ax.set_title(f"AWQ + {v}: its objective per layer")
        ax.legend()
    for v in ("awq", "exact"):
        axes[2].semilogy(x, [cells[v]["layers"][n].attrs["output_error"] for n in names], label=v)
    axes[2].set_title("output error per layer")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel("layer (model order)")
    fig.tight_layout()
    fig.savefig(os.path.join(a.dir, "rounding.png"), dpi=110)

    fig, ax = plt.subplots(figsize=(8, 3.2))
    for v in ("awq", "praq"):
        ax.plot(x, [cells[v]["layers"][n].attrs["awq_alpha"] for n in names], "o-", ms=3, label=v)
    ax.set_xlabel("layer (model order)")
    ax.set_ylabel("α chosen")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.dir, "alpha.png"), dpi=110)
    print(f"wrote {a.dir}/importance.png, rounding.png, alpha.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
