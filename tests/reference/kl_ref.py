#!/usr/bin/env python3
"""KL-divergence statistics of a quantized model against full precision, from float64 NumPy
logits (llama_ref.py forward, quantized_ref.py weights), with llama.cpp's definitions written out
here apart from the C++ code (see examples/perplexity/perplexity.cpp in llama.cpp: mean ±
uncertainty, percentiles by interpolation at fraction·(n−1), RMS Δp, same top p, ln PPL ratio).

Usage: kl_ref.py MODEL_DIR QUANTIZED_H5 IDS_FILE --ctx C
IDS_FILE: qsweep's pre-tokenized format; the sequence is [BOS] + ids (config.json's
bos_token_id, a model folder without a tokenizer), cut into windows of ctx (gptq protocol),
positions 0..ctx-2 of each scored. Prints JSON with the statistics `qsweep eval --kl-divergence`
prints.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from quantized_ref import quantized_weights  # noqa: E402


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def mean_unc(x):
    n = len(x)
    f = x.sum() / n
    v = (x * x).sum() / n - f * f
    return f, (math.sqrt(v / (n - 1)) if v > 0 and n > 10 else 0.0)


def pct(s, fr):
    if fr <= 0:
        return s[0]
    if fr >= 1:
        return s[-1]
    p = fr * (len(s) - 1)
    i = int(p)
    p -= i
    return (1 - p) * s[i] + p * s[min(i + 1, len(s) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("quantized")
    ap.add_argument("ids")
    ap.add_argument("--ctx", type=int, required=True)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    fp = llama_ref.load_weights(a.model)
    q = quantized_weights(fp, a.quantized)
    with open(a.ids) as f:
        assert f.readline().strip() == "#qsweep-token-ids v1"
        ids = [cfg["bos_token_id"]] + [int(t) for t in f.read().split()]
    kl, nll, nll_b, same = [], [], [], []
    for w in range(len(ids) // a.ctx):
        win = ids[w * a.ctx:(w + 1) * a.ctx]
        lb = log_softmax(llama_ref.forward(cfg, fp, win))[:-1]
        lq = log_softmax(llama_ref.forward(cfg, q, win))[:-1]
        tgt = np.asarray(win[1:])
        kl.append((np.exp(lb) * (lb - lq)).sum(axis=-1))
        nll.append(-lq[np.arange(len(tgt)), tgt])
        nll_b.append(-lb[np.arange(len(tgt)), tgt])
        same.append((lb.argmax(axis=-1) == lq.argmax(axis=-1)).astype(float))
    kl, nll, nll_b, same = map(np.concatenate, (kl, nll, nll_b, same))
    n = len(kl)
    s = np.sort(kl)
    names = ["max", "99.9%", "99.0%", "95.0%", "90.0%", "median", "10.0%", "5.0%", "1.0%", "0.1%", "min"]
    fr = [1, 0.999, 0.99, 0.95, 0.9, None, 0.1, 0.05, 0.01, 0.001, 0]
    med = 0.5 * (s[n // 2] + s[n // 2 - 1]) if n % 2 == 0 else s[n // 2]
    out = {"tokens": n}
    out["kld_mean"], out["kld_mean_uncertainty"] = mean_unc(kl)
    for nm, f in zip(names, fr):
        out["kld_" + nm] = med if f is None else pct(s, f)
    st = same.mean()
    out["same_top"], out["same_top_uncertainty"] = st, math.sqrt(st * (1 - st) / (n - 1))
    dp = np.exp(-nll) - np.exp(-nll_b)
    out["delta_p_mean"], out["delta_p_mean_uncertainty"] = mean_unc(dp)
    mse, mse_u = mean_unc(dp * dp)
    out["delta_p_rms"] = math.sqrt(mse)
    out["delta_p_rms_uncertainty"] = 0.5 / out["delta_p_rms"] * mse_u
    mq, uq = mean_unc(nll)
    mb, ub = mean_unc(nll_b)
    cov = ((nll * nll_b).sum() / n - (nll.sum() / n) * (nll_b.sum() / n)) / (n - 1) if n >= 10 else 0.0
    out["ln_ppl_ratio"] = mq - mb
    out["ln_ppl_ratio_uncertainty"] = math.sqrt(max(uq * uq + ub * ub - 2 * cov, 0.0))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
