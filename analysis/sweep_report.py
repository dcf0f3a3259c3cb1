#!/usr/bin/python3
"""sweep_report.py — a report of a finished sweep: a Markdown table of every cell and plots of
the size/quality frontier (perplexity and KL-divergence against bits per weight, one line per
method).

Usage: /usr/bin/python3 analysis/sweep_report.py results/demo [--format png|pdf|svg] [--no-plots]

Reads DIR/sweep.h5 with h5py (Debian's python3-h5py, hence /usr/bin/python3): the /table
columns, each cell's /params, and the full-precision /baselines. Writes DIR/report.md and
DIR/plots/frontier.<format>; prints the table.
"""
import argparse
import math
import os
import sys

import h5py


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    with h5py.File(path, "r") as f:
        if text(f.attrs.get("format", b"")) != "qsweep-sweep":
            sys.exit(f"{path}: not a qsweep sweep file")
        if int(f.attrs.get("complete", 0)) != 1:
            sys.exit(f"{path}: incomplete (no completion marker)")
        axes = [a for a in text(f.attrs["axes"]).split(",") if a]
        cells = []
        for name in f["cells"]:
            g = f["cells"][name]
            row = {k: (text(v) if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
            row["params"] = {k: text(v) for k, v in g["params"].attrs.items()}
            cells.append(row)
        baselines = {k: float(f["baselines"][k].attrs["perplexity"]) for k in f["baselines"]}
    cells.sort(key=lambda r: int(r["index"]))
    return axes, cells, baselines


def fmt(v, spec):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--format", default="png", choices=["png", "pdf", "svg"])
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    axes, cells, baselines = load(os.path.join(a.dir, "sweep.h5"))

    cols = [x.split(".", 1)[1] for x in axes]
    head = ["cell"] + cols + ["status", "ppl", "Δppl", "KL", "top-1", "bits/w", "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in cells:
        ppl = r.get("perplexity", float("nan"))
        base = baselines.get(r.get("baseline", ""), float("nan"))
        vals = [str(r["index"])] + [r["params"].get(x, "") for x in axes] + [
            r["status"], fmt(ppl, ".4f"), fmt(ppl - base, "+.4f"), fmt(r.get("kl_divergence"), ".5f"),
            fmt(r.get("top1_agreement"), ".4f"), fmt(r.get("bits_per_weight"), ".4f"), fmt(r.get("seconds"), ".1f")]
        if r["status"] != "complete":
            vals[-6] = "error: " + r.get("error", "")
        lines.append("| " + " | ".join(vals) + " |")
    for k, v in baselines.items():
        lines.append(f"\nfull precision ({k}): perplexity {v:.4f}")
    report = "\n".join(lines) + "\n"
    with open(os.path.join(a.dir, "report.md"), "w") as out:
        out.write(f"# sweep {a.dir}\n\n" + report)
    print(report)

    done = [r for r in cells if r["status"] == "complete" and not math.isnan(r.get("perplexity", float("nan")))]
    if a.no_plots or not done:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    methods = sorted({r["params"].get("quantize.method", "?") for r in done})
    for m in methods:
        pts = sorted((r["bits_per_weight"], r["perplexity"], r.get("kl_divergence", float("nan")))
                     for r in done if r["params"].get("quantize.method") == m)
        ax[0].plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=m)
        ax[1].plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=m)
    for k, v in baselines.items():
        ax[0].axhline(v, color="gray", ls="--", lw=1, label=f"full precision ({v:.3f})")
    ax[0].set_xlabel("bits per weight (codes + scales + zeros)")
    ax[0].set_ylabel("perplexity")
    ax[1].set_xlabel("bits per weight (codes + scales + zeros)")
    ax[1].set_ylabel("KL(full ‖ quantized), nats/token")
    ax[1].set_yscale("log")
    for x in ax:
        x.grid(alpha=0.3)
        x.legend()
    fig.suptitle(f"qsweep {os.path.basename(os.path.abspath(a.dir))}: size vs quality")
    fig.tight_layout()
    os.makedirs(os.path.join(a.dir, "plots"), exist_ok=True)
    p = os.path.join(a.dir, "plots", f"frontier.{a.format}")
    fig.savefig(p, dpi=120)
    print(f"wrote {p} and {os.path.join(a.dir, 'report.md')}")


if __name__ == "__main__":
    main()
