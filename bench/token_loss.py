#!/usr/bin/env python3
"""Where a quantized model loses: per-token NLL of full precision and of quantized.h5 files on a
text (the gptq protocol: consecutive windows of SEQ tokens, each scored from its second token),
then the excess loss of B over A summed by target token and by position in the window.

The forward pass is the project's NumPy reference (tests/reference/llama_ref.py) run in float32
for speed; dequantized weights replace the stored layers (files with folded scalings, AWQ's, are
not supported: their norms live in /blocks). A diagnostic, not a fidelity check.

Usage: /usr/bin/python3 bench/token_loss.py MODEL_DIR IDS_FILE A=quantized.h5 B=quantized.h5
       [--windows 8] [--seq 256] [--top 25] [--only REGEX]
"""
import argparse
import json
import os
import re
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
sys.path.insert(0, HERE)
import llama_ref  # noqa: E402
from layer_error import dequantized, read_ids  # noqa: E402


def nll_per_token(cfg, weights, ids, windows, seq):
    out = []
    for k in range(windows):
        w = ids[k * seq:(k + 1) * seq]
        if len(w) < seq:
            break
        out.append(llama_ref.next_token_nll(llama_ref.forward(cfg, weights, w), w))
    return np.array(out)  # [windows, seq-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("ids")
    ap.add_argument("files", nargs=2)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--only", default=None,
                    help="regex: B takes its own layers only where the name matches; A's elsewhere")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    fp = {k: v.astype(np.float32) for k, v in llama_ref.load_weights(a.model).items()}
    ids = read_ids(a.ids)
    vocab = {i: t for t, i in json.load(open(os.path.join(a.model, "tokenizer.json")))["model"]["vocab"].items()}
    res = {"fp": nll_per_token(cfg, fp, ids, a.windows, a.seq)}
    for spec in a.files:
        name, path = spec.split("=", 1)
        w = dict(fp)
        if name == a.files[1].split("=", 1)[0] and a.only:  # B = A with B's matching layers
            with h5py.File(a.files[0].split("=", 1)[1], "r") as f:
                for n in f["layers"]:
                    w[n + ".weight"] = dequantized(f, n).astype(np.float32)
        with h5py.File(path, "r") as f:
            if "blocks" in f and "input_layernorm" in f["blocks/0"] and "awq" in str(f.attrs.get("method", "")):
                sys.exit(f"{path}: AWQ files are not supported here")
            for n in f["layers"]:
                if name == a.files[0].split("=", 1)[0] or not a.only or re.search(a.only, n):
                    w[n + ".weight"] = dequantized(f, n).astype(np.float32)
        res[name] = nll_per_token(cfg, w, ids, a.windows, a.seq)
    for k, v in res.items():
        print(f"{k}: ppl {np.exp(v.mean()):.4f} over {v.size} tokens")
    (na, A), (nb, B) = [(s.split("=", 1)[0], res[s.split("=", 1)[0]]) for s in a.files]
    d = B - A
    targets = np.array([ids[k * a.seq + 1:(k + 1) * a.seq] for k in range(d.shape[0])])
    print(f"\nexcess NLL of {nb} over {na}: total {d.sum():.2f} nats, mean {d.mean():.4f}")
    print("\nby position in the window (scored position p predicts token p+1):")
    for lo, hi in [(0, 1), (1, 4), (4, 16), (16, 64), (64, a.seq)]:
        s = d[:, lo:hi]
        print(f"  positions {lo:3d}-{hi - 1:3d}: sum {s.sum():8.2f}  mean {s.mean():+.4f}")
    agg = {}
    for t, x in zip(targets.ravel(), d.ravel()):
        c = agg.setdefault(int(t), [0.0, 0])
        c[0] += x
        c[1] += 1
    print(f"\ntarget tokens by summed excess NLL (top {a.top}):")
    for t, (s, c) in sorted(agg.items(), key=lambda kv: -kv[1][0])[:a.top]:
        print(f"  {vocab.get(t, t)!r:24s} n={c:4d} sum {s:7.2f} mean {s / c:+.3f}")
    big = np.argsort(-d.ravel())[:a.top]
    print(f"\nlargest single-token excess (window, position, target, fp/{na}/{nb} NLL):")
    for i in big:
        k, p = divmod(int(i), d.shape[1])
        print(f"  w{k} p{p:3d} {vocab.get(int(targets[k, p]))!r:20s} {res['fp'][k, p]:.2f} {A[k, p]:.2f} {B[k, p]:.2f}")


if __name__ == "__main__":
    main()
