#!/usr/bin/env python3
"""Per-layer output error of quantized models on a text: where a method's error compensation
helps or hurts, layer by layer (a diagnostic for off-domain losses).

For every quantizable linear of the model, the full-precision model is run (float64, the
project's NumPy reference tests/reference/llama_ref.py) on WINDOWS consecutive windows of SEQ
tokens of each text, the Gram G = Σ x xᵀ of the layer's input is kept, and for each quantized.h5
the relative output error  tr((W−Ŵ) G (W−Ŵ)ᵀ) / tr(W G Wᵀ)  is printed (Ŵ dequantized from the
file's codes, scales and zeros). Inputs are the full-precision model's, so the figure isolates
each layer's own error from the propagation of earlier ones. Files with folded scalings (AWQ:
norms stored in /blocks) are compared on their stored layers only, which is exact for layers
whose input is not rescaled (o_proj, down_proj) and not for the others.

Usage: /usr/bin/python3 bench/layer_error.py MODEL_DIR IDS_FILE[,IDS_FILE...] NAME=quantized.h5...
       [--windows 8] [--seq 256] [--skip-first N]     (IDS files from `qsweep tokenize`)
"""
import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_ref  # noqa: E402
from quantized_ref import dequantized  # noqa: E402,F401  (token_loss.py imports it from here)


def read_ids(path):
    with open(path) as f:
        head = f.readline().strip()
        if head != "#qsweep-token-ids v1":
            sys.exit(f"{path}: not a qsweep pre-tokenized file")
        return [int(t) for t in f.read().split()]


def grams(cfg, weights, ids, windows, seq, skip_first=0):
    """{linear name: Σ xxᵀ over the windows} with full-precision inputs (positions < skip_first of
    each window left out: the first tokens' massive activations can dominate the sum)."""
    out = {}
    orig = llama_ref.linear

    def spy(x, W, name, w):
        g = x[skip_first:].T @ x[skip_first:]
        out[name] = out.get(name, 0) + g
        return orig(x, W, name, w)

    llama_ref.linear = spy
    try:
        for k in range(windows):
            chunk = ids[k * seq:(k + 1) * seq]
            if len(chunk) < seq:
                break
            llama_ref.forward(cfg, weights, chunk)
    finally:
        llama_ref.linear = orig
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("ids")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--skip-first", type=int, default=0, help="leave out each window's first N positions")
    a = ap.parse_args()
    import json
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    weights = llama_ref.load_weights(a.model)
    files = [(s.split("=", 1)[0], h5py.File(s.split("=", 1)[1], "r")) for s in a.files]
    texts = a.ids.split(",")
    G = {os.path.basename(t): grams(cfg, weights, read_ids(t), a.windows, a.seq, a.skip_first) for t in texts}
    names = [n for n in next(iter(G.values())) if n in files[0][1]["/layers"]]
    cols = [f"{fn}@{tn}" for tn in G for fn, _ in files]
    print("| layer | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    tot = {c: [] for c in cols}
    for n in names:
        W = weights[n + ".weight"]
        row = []
        for tn, g in G.items():
            ref = ((W @ g[n]) * W).sum()
            for fn, f in files:
                D = W - dequantized(f, n)
                e = ((D @ g[n]) * D).sum() / ref
                tot[f"{fn}@{tn}"].append(e)
                row.append(f"{e:.3e}")
        print(f"| {n} | " + " | ".join(row) + " |")
    print("| geometric mean | " + " | ".join(f"{np.exp(np.mean(np.log(tot[c]))):.3e}" for c in cols) + " |")


if __name__ == "__main__":
    main()
