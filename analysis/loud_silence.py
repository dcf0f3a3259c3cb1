#!/usr/bin/env python3
"""loud_silence.py — the AWQ study's "loud silence" case, without a model: a synthetic SwiGLU MLP
(h = SiLU(W_gate x) * (W_up x)) whose input channels are built to be
  spike   quiet on average, rarely very large, feeding gates that sit on SiLU's steep part
  closed  always loud, but feeding gates that are shut (SiLU ≈ 0, SiLU' ≈ 0)
  steady  moderate, feeding open gates
  ...     background channels
and the importance each method assigns to each channel: AWQ's L1 salience (mean |x|, AutoAWQ),
AWQ's L2 salience (RMS, the study's standard AWQ), and Robust-PRAQ's risk-aware post-activation
importance (qsweep's --awq-salience praq, the formula in src/stats/praq.h, here in float64 with
the same noise augmentation). The reference is the channel's true risk: the mean squared change
of the MLP output when that channel's gate and up weights get quantization-like noise (uniform,
±half a step of a 3-bit grid), by Monte Carlo. Prints a table and the Spearman correlation of
each importance with the true risk; --check exits 1 unless PRAQ ranks `spike` above `closed` while
AWQ's saliences rank them the other way round; --plot FILE draws the importances (matplotlib).
Run: /usr/bin/python3 analysis/loud_silence.py [--check] [--plot out.png]
"""
import argparse
import sys

import numpy as np


def silu(g):
    return g / (1 + np.exp(-g))


def dsilu(g):
    s = 1 / (1 + np.exp(-g))
    return s * (1 + g * (1 - s))


def build(rng, T=4000, H=8, I=32):
    x = 0.3 * rng.standard_normal((T, H))
    spike = rng.random(T) < 0.02
    x[:, 0] = np.where(spike, 8.0, 0.05 * rng.standard_normal(T))          # spike
    x[:, 1] = 3.0 + 0.3 * rng.standard_normal(T)                          # closed
    x[:, 2] = 1.0 + 0.1 * rng.standard_normal(T)                          # steady
    wg = 0.3 * rng.standard_normal((I, H))
    wu = 0.3 * rng.standard_normal((I, H))
    half = I // 2                         # units [0, half) are shut by channel 1; [half, I) are open
    wg[:, :3] = 0.0
    wu[:, :3] = 0.0
    wg[:half, 1], wu[:half, 1] = -2.0, 0.3  # closed: loud, but only into gates it shuts
    wg[half:, 0], wu[half:, 0] = 0.15, 0.3  # spike: into open gates, near SiLU's steep part
    wg[half:, 2], wu[half:, 2] = 0.1, 0.1   # steady: into open gates, small weights
    return x, wg, wu, ["spike", "closed", "steady"] + [f"bg{j}" for j in range(3, H)]


def praq_importance(x, wg, wu, noise_std=0.01, draws=3, seed=0):
    rng = np.random.default_rng(seed)
    acc = np.zeros(x.shape[1])
    k = draws if noise_std > 0 else 1
    den = (wg ** 2).sum(0) + (wu ** 2).sum(0)
    for _ in range(k):
        xt = x + noise_std * np.sqrt((x ** 2).mean(1, keepdims=True)) * rng.standard_normal(x.shape) if noise_std > 0 else x
        g, u = xt @ wg.T, xt @ wu.T
        r = ((dsilu(g) * u) ** 2) @ (wg ** 2) + (silu(g) ** 2) @ (wu ** 2)
        acc += (xt ** 2 * r / den).sum(0) / k
    return np.sqrt(acc / x.shape[0])


def true_risk(x, wg, wu, bits=3, trials=20, seed=1):
    rng = np.random.default_rng(seed)
    h0 = silu(x @ wg.T) * (x @ wu.T)
    step = lambda w: (w.max() - w.min()) / (2 ** bits - 1)
    risk = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        for _ in range(trials):
            g2, u2 = wg.copy(), wu.copy()
            g2[:, j] += rng.uniform(-0.5, 0.5, wg.shape[0]) * step(wg)
            u2[:, j] += rng.uniform(-0.5, 0.5, wu.shape[0]) * step(wu)
            risk[j] += ((silu(x @ g2.T) * (x @ u2.T) - h0) ** 2).mean() / trials
    return risk


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--plot")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    x, wg, wu, names = build(np.random.default_rng(a.seed))
    imp = {"awq-l1": np.abs(x).mean(0), "awq-l2": np.sqrt((x ** 2).mean(0)), "praq": praq_importance(x, wg, wu)}
    risk = true_risk(x, wg, wu)
    print(f"{'channel':8s} {'true risk':>10s} " + " ".join(f"{k:>9s}" for k in imp))
    for j, n in enumerate(names):
        print(f"{n:8s} {risk[j]:10.5f} " + " ".join(f"{v[j]:9.4f}" for v in imp.values()))
    print("Spearman with the true risk: " + ", ".join(f"{k} {spearman(v, risk):+.3f}" for k, v in imp.items()))
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
        for ax, (k, v) in zip(axes, [("true risk", risk)] + list(imp.items())):
            ax.bar(names, v / v.max())
            ax.set_title(k)
            ax.tick_params(axis="x", rotation=60)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=110)
        print(f"plot: {a.plot}")
    if a.check:
        ok = imp["praq"][0] > imp["praq"][1] and all(imp[k][0] < imp[k][1] for k in ("awq-l1", "awq-l2")) and risk[0] > risk[1]
        print("check:", "PRAQ ranks the spike above the closed channel, AWQ the other way round" if ok else "FAILED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
