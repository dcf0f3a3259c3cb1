#!/usr/bin/env python3
"""Independent check of `qsweep compare` (tests/e2e/compare.sh): recompute every figure of its
CSV from the two eval.h5 files with h5py, NumPy and SciPy (t interval: scipy.stats.t.ppf; sign
test: scipy.stats.binomtest) and compare. Usage: compare_ref.py A.h5 B.h5 COMPARE.csv LABEL_A LABEL_B"""
import csv
import math
import sys

import h5py
from scipy import stats


def datasets(path):
    f = h5py.File(path, "r")
    names = f.attrs["datasets"]
    names = names.decode() if isinstance(names, bytes) else names
    out = {}
    for name in names.split(","):
        g = f["datasets/" + name]
        out[name] = (float(g.attrs["perplexity"]), g["windows/nll_sum"][...], g["windows/scored"][...].astype(float))
    return out


a, b = datasets(sys.argv[1]), datasets(sys.argv[2])
label_a, label_b = sys.argv[4], sys.argv[5]
rows = {r["dataset"]: r for r in csv.DictReader(open(sys.argv[3]))}
bad = 0 if set(rows) == set(a) else 1
for name, (pa, na, sa) in a.items():
    pb, nb, sb = b[name]
    d = nb / sb - na / sa
    n = len(d)
    mean, se = d.mean(), d.std(ddof=1) / math.sqrt(n)
    t = stats.t.ppf(0.975, n - 1)
    lo, hi = mean - t * se, mean + t * se
    k, m = int((d < 0).sum()), int((d != 0).sum())
    p = stats.binomtest(k, m, 0.5).pvalue if m else 1.0
    want = {"ppl_a": pa, "ppl_b": pb, "delta_pct": (pb / pa - 1) * 100, "ci_lo_pct": math.expm1(lo) * 100,
            "ci_hi_pct": math.expm1(hi) * 100, "p_sign": p}
    winner = "tie" if lo <= 0 <= hi else (label_b if mean < 0 else label_a)
    r = rows.get(name, {})
    errs = [k2 for k2, v in want.items() if not math.isclose(float(r.get(k2, "nan")), v, rel_tol=1e-9, abs_tol=1e-12)]
    if errs or r.get("winner") != winner or int(r.get("windows", -1)) != n or int(r.get("b_better", -1)) != k:
        print(f"MISMATCH {name}: qsweep {r} reference {want} winner {winner} n {n} k {k}")
        bad = 1
    else:
        print(f"ok {name}: Δ% {want['delta_pct']:+.4f} CI [{want['ci_lo_pct']:+.4f}, {want['ci_hi_pct']:+.4f}] "
              f"p {p:.4g} winner {winner} (t {t:.9f}, {n} windows)")
sys.exit(bad)
