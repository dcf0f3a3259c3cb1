#!/usr/bin/python3
"""show_eval.py — print the results and provenance of a qsweep eval.h5 file.

Usage: /usr/bin/python3 analysis/show_eval.py results/demo/eval.h5 [--windows]

Reads with h5py (Debian's python3-h5py, hence /usr/bin/python3). The per-window NLL sums
under /windows let you recompute either protocol's perplexity yourself:
gptq = exp(mean(nll_sum / scored)), llamacpp = exp(sum(nll_sum) / sum(scored)).
"""
import argparse
import math
import sys

import h5py
import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--windows", action="store_true", help="also print per-window mean NLL")
    a = ap.parse_args(argv)
    with h5py.File(a.file, "r") as f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != "qsweep-eval":
            sys.exit(f"{a.file}: not a qsweep eval file (format attribute is {fmt!r})")
        for k in sorted(f.attrs):
            v = f.attrs[k]
            if isinstance(v, bytes):
                v = v.decode()
            print(f"{k}: {v!r}" if isinstance(v, float) else f"{k}: {v}")
        nll = np.asarray(f["windows/nll_sum"])
        cnt = np.asarray(f["windows/scored"])
        proto = f.attrs["protocol"]
        proto = proto.decode() if isinstance(proto, bytes) else proto
        ppl = math.exp((nll / cnt).mean()) if proto == "gptq" else math.exp(nll.sum() / cnt.sum())
        print(f"recomputed perplexity from /windows: {ppl!r}")
        if a.windows:
            for i, (s, c) in enumerate(zip(nll, cnt)):
                print(f"window {i}: mean nll {s / c:.6f} over {c} tokens")


if __name__ == "__main__":
    main()
