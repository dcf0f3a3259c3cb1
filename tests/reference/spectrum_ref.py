#!/usr/bin/env python3
"""Independent float64 NumPy reference for qsweep's weight-spectrum metrics (`qsweep spectrum`).

Written apart from the C++ code, from the definitions below (see tests/reference/SPECTRUM.md for
how the power-law fit was matched to WeightWatcher). Depends on NumPy only: safetensors files are
parsed by hand, no torch, no `safetensors` / `powerlaw` / `weightwatcher` packages.

Per weight matrix W (stored [out_features, in_features]) and precision:
  * load as float64 ("fp64" = exactly as stored); "fp32" rounds to float32; "fp16" rounds to
    IEEE binary16 (round-to-nearest-even); "bf16" rounds to bfloat16 (round-to-nearest-even, done
    with integer ops on the float32 bits). Finite values that become +-inf are counted as
    `overflow`; if overflow > 0 every metric is NaN and method = "overflow", else method = "hill".
  * Gram = W^T W if in_features <= out_features else W W^T (the smaller side), in float64;
    eigenvalues by numpy.linalg.eigvalsh, sorted descending, only lambda > 0 kept (n = count).
  * Hill: k = max(1, min(n-1, floor(k_frac*n))), alpha = 1 + k / sum_{i=1..k} ln(l_i / l_{k+1}).
  * Power law (WeightWatcher's default alpha, fit 'power_law'): every distinct eigenvalue below
    the largest is a candidate x_min; tail = {l >= x_min} (m values); alpha = 1 + m/sum ln(l/x_min);
    D = max over the tail values x of |F_emp(x) - (1 - (x/x_min)^(1-alpha))| with
    F_emp(x) = #{tail values < x} / m  (i.e. j/m at the j-th smallest, 0-based: the empirical CDF
    just *below* each point; powerlaw's `cdf` convention, and WeightWatcher's WWFit's for
    distinct eigenvalues);
    the x_min with the least D wins (ties: the smallest x_min).
  * lambda_max = l_1, spectral_norm = sqrt(l_1), frobenius_norm = sqrt(sum l),
    stable_rank = sum l / l_1, log_spectral_norm = log10 l_1, log_norm = log10 sum l,
    alpha_weighted = alpha_hill * log10 l_1, spectral_entropy = -sum p ln p / ln n, p = l / sum l.

Usage:
  spectrum_ref.py MATRIX.npy [--precision P] [--k-frac 0.1] [--eigenvalues]
  spectrum_ref.py --model DIR --layer NAME [--precision fp64|fp32|fp16|bf16] [--k-frac 0.1]
                  [--eigenvalues]
  spectrum_ref.py --model DIR --all-layers [--precisions fp64,fp32,fp16,bf16] [--timing]
                  [--filter REGEX] [--eigenvalues]
NAME is the HF module name (model.layers.0.self_attn.q_proj) or its tensor name (...q_proj.weight).
Single-layer mode prints one JSON object; --all-layers prints {"layers": [...], "total_seconds"}.
Import use: `analyze_matrix(W, precision, k_frac)`, `spectral_metrics(eigs_desc, k_frac)`,
`power_law_ks(eigs)`, `alpha_hill(eigs_desc, k_frac)`, `load_tensor(model_dir, name)`.
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

# One BLAS/LAPACK thread unless the caller says otherwise (set before NumPy loads OpenBLAS):
# the matrices are small, and on a shared machine OpenMP threads mostly spin (6-7x slower on
# kjv-llama with 2 busy cores). This also matches the C++ side (single-threaded LAPACK per layer).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

PRECISIONS = ("fp64", "fp32", "fp16", "bf16")

# ----------------------------------------------------------------------------------------------
# safetensors (by hand): u64 LE header length H, H bytes of JSON
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"?}, then the data section
# (offsets relative to its start, i.e. file offset 8 + H).
# ----------------------------------------------------------------------------------------------


def _read_header(path):
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen).decode("utf-8"))
    header.pop("__metadata__", None)
    return header, 8 + hlen


def _tensor_files(model_dir):
    """{tensor name: file path} for a single-file or sharded (index.json) checkpoint."""
    if os.path.isfile(model_dir) and model_dir.endswith(".safetensors"):
        return {name: model_dir for name in _read_header(model_dir)[0]}
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        return {name: os.path.join(model_dir, shard) for name, shard in wmap.items()}
    single = os.path.join(model_dir, "model.safetensors")
    return {name: single for name in _read_header(single)[0]}


def _decode(raw, dtype, shape):
    if dtype == "BF16":  # upper half of an IEEE float32
        arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F16":
        arr = np.frombuffer(raw, dtype="<f2")
    elif dtype == "F32":
        arr = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F64":
        arr = np.frombuffer(raw, dtype="<f8")
    else:
        raise ValueError(f"unsupported safetensors dtype {dtype}")
    return arr.astype(np.float64).reshape(shape)


def tensor_index(model_dir):
    """[(tensor name, shape, dtype, path)] of every tensor, in file/shard order."""
    files = _tensor_files(model_dir)
    out, headers = [], {}
    for name, path in files.items():
        if path not in headers:
            headers[path] = _read_header(path)[0]
        info = headers[path][name]
        out.append((name, tuple(info["shape"]), info["dtype"], path))
    return out


def load_tensor(model_dir, name):
    """One tensor as float64 (reads only its bytes). `name` may omit the '.weight' suffix."""
    files = _tensor_files(model_dir)
    if name not in files and name + ".weight" in files:
        name = name + ".weight"
    if name not in files:
        raise KeyError(f"tensor {name!r} not found in {model_dir}")
    header, base = _read_header(files[name])
    info = header[name]
    b, e = info["data_offsets"]
    with open(files[name], "rb") as f:
        f.seek(base + b)
        raw = f.read(e - b)
    return _decode(raw, info["dtype"], info["shape"])


# ----------------------------------------------------------------------------------------------
# Linear layers in model order
# ----------------------------------------------------------------------------------------------
_PROJ_ORDER = [("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
               ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_o"),
               ("mlp.gate_proj", "mlp_gate"), ("mlp.up_proj", "mlp_up"),
               ("mlp.down_proj", "mlp_down")]


def linear_layers(model_dir):
    """[(module name, tensor name, category, out_features, in_features)] in model order:
    q, k, v, o, gate, up, down of each block, then lm_head (if stored, i.e. not tied)."""
    shapes = {n: s for n, s, _, _ in tensor_index(model_dir)}
    blocks = sorted({int(m.group(1)) for n in shapes
                     for m in [re.match(r"model\.layers\.(\d+)\.", n)] if m})
    out = []
    for b in blocks:
        for suffix, cat in _PROJ_ORDER:
            t = f"model.layers.{b}.{suffix}.weight"
            if t in shapes and len(shapes[t]) == 2:
                out.append((t[:-len(".weight")], t, cat, shapes[t][0], shapes[t][1]))
    if "lm_head.weight" in shapes:
        s = shapes["lm_head.weight"]
        out.append(("lm_head", "lm_head.weight", "lm_head", s[0], s[1]))
    return out


# ----------------------------------------------------------------------------------------------
# Precision rounding
# ----------------------------------------------------------------------------------------------
def round_to_precision(W, precision):
    """(rounded float64 copy, overflow count). W holds the stored values (float64)."""
    W = np.asarray(W, dtype=np.float64)
    finite = np.isfinite(W)
    if precision == "fp64":
        R = W.copy()
    elif precision == "fp32":
        with np.errstate(over="ignore"):
            R = W.astype(np.float32).astype(np.float64)
    elif precision == "fp16":
        with np.errstate(over="ignore"):
            R = W.astype(np.float16).astype(np.float64)  # IEEE round-to-nearest-even
    elif precision == "bf16":
        with np.errstate(over="ignore"):
            f32 = W.astype(np.float32)  # exact for checkpoint values (stored as <= 32 bits)
        u = f32.view(np.uint32).astype(np.uint64)
        lsb = (u >> 16) & 1
        rounded = ((u + 0x7FFF + lsb) >> 16) & 0xFFFF  # RNE on the 16 dropped bits
        nan = np.isnan(f32)
        rounded = np.where(nan, (u >> 16) | 0x40, rounded)  # keep NaN a (quiet) NaN
        R = (rounded.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    else:
        raise ValueError(f"unknown precision {precision!r} (fp64|fp32|fp16|bf16)")
    overflow = int(np.count_nonzero(finite & np.isinf(R)))
    return R, overflow


# ----------------------------------------------------------------------------------------------
# Spectrum and metrics
# ----------------------------------------------------------------------------------------------
def gram_eigenvalues(W):
    """Eigenvalues (> 0, descending) of the smaller Gram matrix of W [out, in], float64."""
    W = np.asarray(W, dtype=np.float64)
    out_f, in_f = W.shape
    G = W.T @ W if in_f <= out_f else W @ W.T
    ev = np.linalg.eigvalsh(G)
    ev = ev[ev > 0]
    return np.sort(ev)[::-1].copy()


def alpha_hill(desc, k_frac=0.1):
    """(alpha, k) of the Hill estimator on eigenvalues sorted descending (all > 0)."""
    n = len(desc)
    if n < 2:
        return float("nan"), 0
    k = max(1, min(n - 1, int(math.floor(k_frac * n))))
    s = float(np.sum(np.log(desc[:k] / desc[k])))
    return (1.0 + k / s if s > 0 else float("nan")), k


def power_law_ks(eigs):
    """WeightWatcher's power-law fit (see module doc / SPECTRUM.md).
    Returns dict(alpha, xmin, D, tail); NaNs and tail 0 if there is no candidate."""
    x = np.sort(np.asarray(eigs, dtype=np.float64))
    x = x[x > 0]
    n = len(x)
    nan = float("nan")
    if n < 2:
        return dict(alpha=nan, xmin=nan, D=nan, tail=0)
    # lt[j] = #{values < x[j]}: for the tail x[i:] (x[i] = x_min), #{tail < x[j]} = lt[j] - i.
    lt = np.searchsorted(x, x, side="left")
    # Candidates: each distinct value below the largest, at its first index i (tail = x[i:]).
    cand = np.flatnonzero((lt == np.arange(n)) & (x < x[-1]))
    alphas = np.full(len(cand), nan)
    Ds = np.full(len(cand), np.inf)
    # Evaluate candidates in row blocks (vectorised; row c uses only columns j >= cand[c]).
    cols = np.arange(n)
    step = max(1, (1 << 22) // n)
    for b0 in range(0, len(cand), step):
        idx = cand[b0:b0 + step]
        mask = cols[None, :] >= idx[:, None]
        ratio = np.where(mask, x[None, :] / x[idx][:, None], 1.0)  # lambda / x_min (1 off-tail)
        m = (n - idx).astype(np.float64)
        s = np.sum(np.log(ratio), axis=1)  # sum over the tail of ln(lambda / x_min)
        ok = s > 0
        a = np.where(ok, 1.0 + m / np.where(ok, s, 1.0), nan)
        f_fit = 1.0 - ratio ** (1.0 - a[:, None])
        f_emp = (lt[None, :] - idx[:, None]) / m[:, None]
        diff = np.where(mask, np.abs(f_emp - f_fit), 0.0)
        alphas[b0:b0 + step] = a
        Ds[b0:b0 + step] = np.where(ok, np.max(diff, axis=1), np.inf)
    if not np.isfinite(Ds).any():
        return dict(alpha=nan, xmin=nan, D=nan, tail=0)
    c = int(np.argmin(Ds))  # first minimum: ties keep the smaller x_min
    return dict(alpha=float(alphas[c]), xmin=float(x[cand[c]]), D=float(Ds[c]),
                tail=int(n - cand[c]))


def power_law_ks_loop(eigs):
    """Same fit, one candidate at a time (slow, plain; kept as a cross-check of the above)."""
    x = np.sort(np.asarray(eigs, dtype=np.float64))
    x = x[x > 0]
    n = len(x)
    best = dict(alpha=float("nan"), xmin=float("nan"), D=float("nan"), tail=0)
    best_D = math.inf
    for i in range(n - 1):
        if i > 0 and x[i] == x[i - 1]:
            continue  # same x_min as the previous index: same tail {lambda >= x_min}
        xmin = x[i]
        if xmin >= x[-1]:
            break
        tail = x[i:]
        m = n - i
        s = float(np.sum(np.log(tail / xmin)))
        if not s > 0:
            continue
        alpha = 1.0 + m / s
        f_fit = 1.0 - (tail / xmin) ** (1.0 - alpha)
        f_emp = np.searchsorted(tail, tail, side="left") / m  # #{tail < x} / m
        D = float(np.max(np.abs(f_emp - f_fit)))
        if D < best_D:
            best_D = D
            best = dict(alpha=alpha, xmin=float(xmin), D=D, tail=int(m))
    return best


METRIC_KEYS = ("n_eigs", "alpha_hill", "k_used", "alpha_pl", "pl_xmin", "pl_tail", "pl_D",
               "lambda_max", "spectral_norm", "frobenius_norm", "stable_rank",
               "log_spectral_norm", "log_norm", "alpha_weighted", "spectral_entropy")


def spectral_metrics(eig_desc, k_frac=0.1):
    """All metrics of a spectrum (any order; values <= 0 dropped)."""
    ev = np.asarray(eig_desc, dtype=np.float64)
    ev = np.sort(ev[ev > 0])[::-1]
    n = len(ev)
    nan = float("nan")
    if n == 0:
        return {k: (0 if k in ("n_eigs", "k_used", "pl_tail") else nan) for k in METRIC_KEYS}
    a_hill, k = alpha_hill(ev, k_frac)
    pl = power_law_ks(ev)
    lmax = float(ev[0])
    total = float(np.sum(ev))
    p = ev / total
    entropy = float(-np.sum(p * np.log(p)) / math.log(n)) if n > 1 else nan
    return {
        "n_eigs": int(n), "alpha_hill": a_hill, "k_used": int(k),
        "alpha_pl": pl["alpha"], "pl_xmin": pl["xmin"], "pl_tail": pl["tail"], "pl_D": pl["D"],
        "lambda_max": lmax, "spectral_norm": math.sqrt(lmax), "frobenius_norm": math.sqrt(total),
        "stable_rank": total / lmax, "log_spectral_norm": math.log10(lmax),
        "log_norm": math.log10(total), "alpha_weighted": a_hill * math.log10(lmax),
        "spectral_entropy": entropy,
    }


def analyze_matrix(W, precision="fp64", k_frac=0.1, eigenvalues=False):
    """Round W [out, in] to `precision`, then all metrics. Returns a dict (see METRIC_KEYS)."""
    R, overflow = round_to_precision(W, precision)
    res = {"precision": precision, "overflow": overflow}
    if overflow > 0:
        res["method"] = "overflow"
        res.update({k: (0 if k in ("n_eigs", "k_used", "pl_tail") else float("nan"))
                    for k in METRIC_KEYS})
        if eigenvalues:
            res["eigenvalues"] = []
        return res
    ev = gram_eigenvalues(R)
    res["method"] = "hill"
    res.update(spectral_metrics(ev, k_frac))
    if eigenvalues:
        res["eigenvalues"] = [float(v) for v in ev]
    return res


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def _dump(obj):
    # NaN is printed as JSON NaN (Python's json allows it) to keep the numbers self-describing.
    print(json.dumps(obj, indent=1, allow_nan=True))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", help="MATRIX.npy, or a safetensors model dir / file")
    ap.add_argument("--model", help="safetensors model dir (single file or sharded index.json)")
    ap.add_argument("--layer", help="HF module or tensor name, e.g. model.layers.0.self_attn.q_proj")
    ap.add_argument("--precision", default="fp64", choices=PRECISIONS)
    ap.add_argument("--all-layers", action="store_true", help="every linear layer, model order")
    ap.add_argument("--precisions", default=None, help="with --all-layers, e.g. fp64,fp32,fp16,bf16")
    ap.add_argument("--filter", default="", help="with --all-layers: regex searched in module name")
    ap.add_argument("--k-frac", type=float, default=0.1)
    ap.add_argument("--eigenvalues", action="store_true", help="also print the eigenvalues")
    ap.add_argument("--timing", action="store_true", help="with --all-layers: per-layer seconds")
    args = ap.parse_args(argv)

    src = args.model or args.source
    if not src:
        ap.error("give MATRIX.npy or --model DIR")

    if src.endswith(".npy"):
        W = np.load(src).astype(np.float64)
        if W.ndim != 2:
            ap.error(f"{src}: expected a 2-D matrix, got shape {W.shape}")
        t0 = time.perf_counter()
        res = {"source": src, "out_features": W.shape[0], "in_features": W.shape[1]}
        res.update(analyze_matrix(W, args.precision, args.k_frac, args.eigenvalues))
        res["seconds"] = time.perf_counter() - t0
        _dump(res)
        return 0

    if args.all_layers:
        precs = (args.precisions or args.precision).split(",")
        for p in precs:
            if p not in PRECISIONS:
                ap.error(f"unknown precision {p!r}")
        rx = re.compile(args.filter) if args.filter else None
        layers = [l for l in linear_layers(src) if rx is None or rx.search(l[0])]
        out, total = [], 0.0
        for name, tensor, cat, out_f, in_f in layers:
            t0 = time.perf_counter()
            W = load_tensor(src, tensor)
            per = []
            for p in precs:
                t1 = time.perf_counter()
                r = analyze_matrix(W, p, args.k_frac, args.eigenvalues)
                if args.timing:
                    r["seconds"] = time.perf_counter() - t1
                per.append(r)
            dt = time.perf_counter() - t0
            total += dt
            # alpha_delta: alpha_hill minus that of the highest precision analysed
            ref = per[min(range(len(precs)), key=lambda j: PRECISIONS.index(precs[j]))]
            for r in per:
                r["alpha_delta"] = r["alpha_hill"] - ref["alpha_hill"]
                r["alpha_delta_pct"] = (100.0 * r["alpha_delta"] / ref["alpha_hill"]
                                        if ref["alpha_hill"] else float("nan"))
            entry = {"name": name, "tensor": tensor, "category": cat,
                     "out_features": out_f, "in_features": in_f, "per_precision": per}
            if args.timing:
                entry["seconds"] = dt
            out.append(entry)
        res = {"model": src, "k_frac": args.k_frac, "precisions": precs, "layers": out}
        if args.timing:
            res["total_seconds"] = total
            res["n_layers"] = len(out)
        _dump(res)
        return 0

    if not args.layer:
        ap.error("--layer NAME (or --all-layers) is required with a model")
    tensor = args.layer if args.layer.endswith(".weight") else args.layer + ".weight"
    t0 = time.perf_counter()
    W = load_tensor(src, tensor)
    res = {"model": src, "name": tensor[:-len(".weight")], "tensor": tensor,
           "out_features": W.shape[0], "in_features": W.shape[1], "k_frac": args.k_frac}
    res.update(analyze_matrix(W, args.precision, args.k_frac, args.eigenvalues))
    res["seconds"] = time.perf_counter() - t0
    _dump(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
