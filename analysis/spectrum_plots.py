#!/usr/bin/python3
"""Plots for the output of `qsweep spectrum`.

qsweep spectrum fits the heavy-tailed exponent alpha of each layer's eigenvalue
spectrum (eigenvalues of W^T W) at several storage precisions and writes
precision_alpha_hill_results.csv and results.h5 into an output directory. This
script reads them and writes OUTDIR/plots/:

  alpha_distribution_by_precision.<fmt>  box plot of alpha_hill per precision
  by_category/alpha_<category>.<fmt>     alpha_hill per layer of one category
  alpha_per_layer_batch_<NN>.<fmt>       grouped bars, at most 16 layers each
  individual_layers/<layer>.<fmt>        empirical spectral density with the Hill
                                         threshold and power-law x_min marked
                                         (needs --save-eigenvalues), otherwise a
                                         bar chart of alpha_hill and alpha_pl

Usage: spectrum_plots.py OUTDIR [--format png|pdf|svg] [--quiet]
NaN values (overflow, failed fits) are left out of every plot.
"""
import argparse
import os
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogFormatter, NullFormatter, NullLocator, ScalarFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CSV_NAME = "precision_alpha_hill_results.csv"
BATCH = 16
RANK = {"fp64": 0, "fp32": 1, "fp16": 2, "bf16": 3}  # highest precision first
COLORS = {"fp64": "#1f77b4", "fp32": "#2ca02c", "fp16": "#ff7f0e", "bf16": "#d62728"}
MARKERS = {"fp64": "o", "fp32": "s", "fp16": "^", "bf16": "D"}


def style(p, i):
    """Stable colour and marker for a precision (unknown names cycle)."""
    return (COLORS.get(p, "C%d" % (4 + i % 6)), MARKERS.get(p, "v"))


def block_index(name):
    m = re.search(r"layers\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


class Writer:
    def __init__(self, plot_dir, fmt):
        self.plot_dir, self.fmt, self.written = plot_dir, fmt, []

    def save(self, fig, rel):
        path = os.path.join(self.plot_dir, rel + "." + self.fmt)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.tight_layout()  # much cheaper than savefig(bbox_inches="tight")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        self.written.append(path)


def load(outdir):
    csv = os.path.join(outdir, CSV_NAME)
    if not os.path.isfile(csv):
        sys.exit("spectrum_plots.py: error: %s not found (is %s a qsweep spectrum output "
                 "directory?)" % (csv, outdir))
    df = pd.read_csv(csv)
    # precisions in run order: columns alpha_<p> that come with k_used_<p>
    precs = [c[len("alpha_"):] for c in df.columns
             if c.startswith("alpha_") and "k_used_" + c[len("alpha_"):] in df.columns]
    if df.empty or not precs:
        sys.exit("spectrum_plots.py: error: %s has no layers or no alpha_<precision> columns" % csv)
    for p in precs:
        for col in ("alpha_", "alpha_pl_", "pl_xmin_", "k_used_"):
            if col + p in df.columns:
                df[col + p] = pd.to_numeric(df[col + p], errors="coerce")
        if "method_" + p in df.columns:  # overflow rows: no alpha, whatever the cell says
            df.loc[df["method_" + p].astype(str) != "hill", "alpha_" + p] = np.nan
    return df, precs


def load_eigenvalues(outdir, precs, names):
    """{(precision, layer): descending positive eigenvalues}, empty without --save-eigenvalues."""
    path = os.path.join(outdir, "results.h5")
    eigs = {}
    if not os.path.isfile(path):
        return eigs
    try:
        import h5py
        with h5py.File(path, "r") as f:
            for p in precs:
                grp = f.get("precisions/%s/eigenvalues" % p)
                if grp is None:
                    continue
                for n in names:
                    ds = grp.get(n)
                    if ds is not None:
                        ev = np.asarray(ds[()], dtype=np.float64)
                        eigs[(p, n)] = ev[np.isfinite(ev) & (ev > 0)]
    except Exception as e:  # a broken results.h5 should not stop the CSV plots
        print("spectrum_plots.py: warning: cannot read eigenvalues from %s: %s" % (path, e),
              file=sys.stderr)
    return eigs


def plot_distribution(df, precs, w):
    fig, ax = plt.subplots(figsize=(1.6 * len(precs) + 3, 4.5))
    data = [df["alpha_" + p].dropna().to_numpy() for p in precs]
    pos = [i + 1 for i, d in enumerate(data) if len(d)]
    if pos:
        ax.boxplot([data[i - 1] for i in pos], positions=pos, widths=0.5, showfliers=False,
                   medianprops={"color": "k"})
    rng = np.random.default_rng(0)
    for i, (p, d) in enumerate(zip(precs, data)):
        c, m = style(p, i)
        ax.scatter(i + 1 + rng.uniform(-0.15, 0.15, len(d)), d, s=14, color=c, marker=m,
                   alpha=0.6, zorder=3)
    ax.set_xticks(range(1, len(precs) + 1))
    ax.set_xticklabels(["%s\n(n=%d)" % (p, len(d)) for p, d in zip(precs, data)])
    ax.set_ylabel(r"$\alpha_{\mathrm{Hill}}$")
    ax.set_title("alpha_hill distribution by precision (%d layers)" % len(df))
    ax.grid(axis="y", alpha=0.3)
    w.save(fig, "alpha_distribution_by_precision")


def plot_categories(df, precs, w):
    for cat in dict.fromkeys(df["category"].astype(str)):
        sub = df[df["category"].astype(str) == cat]
        blocks = [block_index(n) for n in sub["layer_name"]]
        use_blocks = None not in blocks
        x = np.array(blocks if use_blocks else range(len(sub)), dtype=float)
        fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(sub) + 3), 4.2))
        for i, p in enumerate(precs):
            c, m = style(p, i)
            y = sub["alpha_" + p].to_numpy()
            ok = np.isfinite(y)
            off = (i - (len(precs) - 1) / 2) * 0.06  # keep near-identical series visible
            ax.plot(x[ok] + off, y[ok], marker=m, color=c, label=p, lw=1, ms=5,
                    mfc="none", mew=1.3)
        ax.set_xticks(x)
        ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
        vals = sub[["alpha_" + p for p in precs]].to_numpy(dtype=float)
        if np.isfinite(vals).any():  # at least 0.5 alpha units tall, no offset notation
            lo, hi = np.nanmin(vals), np.nanmax(vals)
            pad = max(0.25 - (hi - lo) / 2, 0) + 0.05 * (hi - lo)
            ax.set_ylim(lo - pad, hi + pad)
        ax.ticklabel_format(axis="y", useOffset=False)
        if use_blocks:
            ax.set_xticklabels([str(b) for b in blocks])
            ax.set_xlabel("block index (series offset slightly for visibility)")
        else:
            ax.set_xticklabels(sub["layer_name"], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(r"$\alpha_{\mathrm{Hill}}$")
        ax.set_title("alpha_hill per layer: %s" % cat)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        w.save(fig, os.path.join("by_category", "alpha_" + safe_name(cat)))


def plot_batches(df, precs, w):
    width = 0.8 / len(precs)
    for b, start in enumerate(range(0, len(df), BATCH)):
        sub = df.iloc[start:start + BATCH]
        x = np.arange(len(sub))
        fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(sub) + 2), 5))
        for i, p in enumerate(precs):
            ax.bar(x + (i - (len(precs) - 1) / 2) * width, sub["alpha_" + p].fillna(0.0),
                   width, color=style(p, i)[0], label=p)
        ax.set_xticks(x)
        ax.set_xticklabels(sub["layer_name"], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel(r"$\alpha_{\mathrm{Hill}}$")
        ax.set_title("alpha_hill per layer, layers %d-%d of %d (missing bar: overflow/NaN)"
                     % (start + 1, start + len(sub), len(df)))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(precs))
        w.save(fig, "alpha_per_layer_batch_%02d" % (b + 1))


def fmt_alpha(v):
    return "NaN" if not np.isfinite(v) else "%.4f" % v


def plot_layer(row, precs, eigs, w):
    name = row["layer_name"]
    # spectrum of the highest precision that has eigenvalues, preferring one with a Hill fit
    have = sorted([p for p in precs if len(eigs.get((p, name), ())) >= 2],
                  key=lambda p: (not np.isfinite(row["alpha_" + p]), RANK.get(p, len(RANK))))
    if have:
        p0 = have[0]
        ev = eigs[(p0, name)]
        fig, ax = plt.subplots(figsize=(9.5, 4.6))
        lo, hi = ev.min(), ev.max()
        if hi <= lo * (1 + 1e-9):  # flat spectrum (e.g. orthogonal W): give it some width
            lo, hi = lo / 2, hi * 2
        bins = np.logspace(np.log10(lo), np.log10(hi), min(50, max(10, len(ev) // 8)))
        bins[0], bins[-1] = lo, hi  # 10**log10(x) may round below lambda_max
        # counts in log-spaced bins (a histogram of log lambda): a lone outlier stays visible
        counts, _, _ = ax.hist(ev, bins=bins, histtype="stepfilled", color="0.65", ec="0.35",
                               label="ESD (%s)" % p0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # log-axis minor ticks and mathtext labels dominate the run time: keep them cheap
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(LogFormatter())
            axis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_locator(NullLocator())
        if counts.max() < 100:  # under two decades: plain 1-2-5 ticks
            ax.set_yticks([t for t in (1, 2, 5, 10, 20, 50) if t <= counts.max() * 1.5])
            ax.yaxis.set_major_formatter(ScalarFormatter())
        if hi / lo > 100:
            ax.xaxis.set_minor_locator(NullLocator())
        k = row.get("k_used_" + p0, np.nan)
        if np.isfinite(k) and 0 < int(k) < len(ev):
            ax.axvline(ev[int(k)], color="C3", ls="--",
                       label=r"Hill threshold $\lambda_{k+1}$, k=%d" % int(k))
        xmin = row.get("pl_xmin_" + p0, np.nan)
        if np.isfinite(xmin) and xmin > 0:
            ax.axvline(xmin, color="C0", ls=":", lw=2, label=r"power-law $x_{min}$")
        for p in precs:  # alpha values of every precision, as legend-only entries
            ax.plot([], [], " ", label="%s: hill %s  pl %s" % (
                p, fmt_alpha(row["alpha_" + p]), fmt_alpha(row.get("alpha_pl_" + p, np.nan))))
        ax.set_xlabel(r"eigenvalue $\lambda$ of $W^T W$")
        ax.set_ylabel("count (log-spaced bins)")
        ax.set_ylim(bottom=0.7)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title("%s  (%s, %d eigenvalues)\nalpha_hill(%s) = %s"
                     % (name, row["category"], len(ev), p0, fmt_alpha(row["alpha_" + p0])),
                     fontsize=10)
    else:
        fig, ax = plt.subplots(figsize=(1.1 * len(precs) + 3, 4))
        x = np.arange(len(precs))
        hill = np.array([row["alpha_" + p] for p in precs], dtype=float)
        pl = np.array([row.get("alpha_pl_" + p, np.nan) for p in precs], dtype=float)
        for off, vals, c, lab in ((-0.2, hill, "C0", "alpha_hill"), (0.2, pl, "C1", "alpha_pl")):
            ax.bar(x + off, np.nan_to_num(vals), 0.4, color=c, label=lab)
            for xi, v, p in zip(x + off, vals, precs):
                txt = "overflow" if row.get("method_" + p) == "overflow" else fmt_alpha(v)
                ax.text(xi, np.nan_to_num(v), txt, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(precs)
        ax.set_ylabel(r"$\alpha$")
        ax.set_title("%s (%s)\nno eigenvalues saved" % (name, row["category"]), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    w.save(fig, os.path.join("individual_layers", safe_name(name)))


def main():
    ap = argparse.ArgumentParser(description="Plots for a qsweep spectrum output directory.")
    ap.add_argument("outdir", help="directory written by qsweep spectrum")
    ap.add_argument("--format", default="png", choices=["png", "pdf", "svg"])
    ap.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = ap.parse_args()

    df, precs = load(args.outdir)
    eigs = load_eigenvalues(args.outdir, precs, list(df["layer_name"]))
    w = Writer(os.path.join(args.outdir, "plots"), args.format)
    os.makedirs(w.plot_dir, exist_ok=True)
    plot_distribution(df, precs, w)
    plot_categories(df, precs, w)
    plot_batches(df, precs, w)
    for _, row in df.iterrows():
        plot_layer(row, precs, eigs, w)
    if not args.quiet:
        print("spectrum_plots.py: wrote %d %s files to %s (%d layers, precisions %s, %s)"
              % (len(w.written), args.format, w.plot_dir, len(df), ",".join(precs),
                 "with eigenvalue spectra" if eigs else "no eigenvalues saved"))


if __name__ == "__main__":
    main()
