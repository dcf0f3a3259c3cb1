#!/usr/bin/env python3
"""gptq_torch.py — GPTQ (Frantar et al. 2022) in PyTorch, written from the algorithm's definition,
run on the problems bench/bench_gptq.cc dumped, and compared with qsweep's result and time.

The algorithm, step for step as qsweep's src/quant/gptq.cc states it:
  H = 2·xtx/n; dead columns (H_ii = 0): H_ii = 1, W[:, i] = 0;
  λ = damp·mean(diag H) added to the diagonal (×10 and retried while a factorisation fails);
  U = upper Cholesky factor of (H + λI)⁻¹  (cholesky → cholesky_inverse → cholesky(upper));
  columns in blocks of B = 128: for each column i of the block, ŵ_i = grid(w_i),
  e = (w_i − ŵ_i)/U_ii, the block's later columns -= e·U[i, i+1:block end]; then the rest of W
  -= E·U[block, block end:] (one GEMM per block, the "lazy batch" update);
  the grid of a group (G = 128 consecutive columns) comes from W as it stands at the start of
  the block holding the group's first column.
The grid is qsweep's asymmetric one, evaluated in fp32 (src/quant/grid.h) whatever the working
precision: min = min(w, 0), max = max(w, 0), s = max(max − min, 1e-5)/(2^b − 1),
z = clamp(round(−min/s), 0, 2^b − 1), q = clamp(round(w/s) + z, 0, 2^b − 1), ŵ = (q − z)·s,
round half to even (torch.round). The working precision (H, U, W and the updates) is float32
(what the GPTQ reference uses) or float64 (what qsweep uses).

usage: gptq_torch.py DIR [--threads N] [--reps N] [--no-loss] [--device cpu|cuda]   (DIR holds manifest.json)
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch


def grid_params(w32, bits):
    """Per-row grid of w32 [rows, n] (float32): scale [rows], zero [rows] (float32)."""
    qmax = 2 ** bits - 1
    mn = torch.clamp(w32.min(dim=1).values, max=0.0)
    mx = torch.clamp(w32.max(dim=1).values, min=0.0)
    s = torch.clamp(mx - mn, min=1e-5) / qmax
    z = torch.clamp(torch.round(-mn / s), 0, qmax)
    return s, z


def gptq(W, xtx, tokens, dtype, bits=4, group=128, damp=0.01, block=128):
    """W [rows, cols] float32, xtx [cols, cols] float64 → (codes uint8, ŵ float32, damp used)."""
    qmax = 2 ** bits - 1
    dev = W.device
    W = W.to(dtype).clone()
    H = (2.0 * xtx / tokens).to(dtype)
    rows, cols = W.shape
    dead = torch.diagonal(H) == 0
    if bool(dead.any()):
        idx = torch.nonzero(dead).flatten()
        H[idx, idx] = 1.0
        W[:, idx] = 0.0
    mean_diag = torch.mean(torch.diagonal(H))
    d = damp
    U = None
    for _ in range(6):
        Hd = H.clone()
        Hd.diagonal().add_(d * mean_diag)
        L, info = torch.linalg.cholesky_ex(Hd)
        if int(info) == 0:
            U, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(L), upper=True)
            if int(info) == 0:
                break
            U = None
        d *= 10
    if U is None:
        raise RuntimeError("damped Hessian not positive definite")
    G = cols if group < 0 else group
    ng = (cols + G - 1) // G
    codes = torch.empty(rows, cols, dtype=torch.uint8, device=dev)
    Q = torch.empty(rows, cols, dtype=torch.float32, device=dev)
    scales = torch.empty(rows, ng, dtype=torch.float32, device=dev)
    zeros = torch.empty(rows, ng, dtype=torch.float32, device=dev)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        n = i2 - i1
        for c in range(i1, i2):  # grids of the groups starting here, from W at block start
            if c % G == 0:
                s, z = grid_params(W[:, c:c + G].to(torch.float32), bits)
                scales[:, c // G] = s
                zeros[:, c // G] = z
        W1 = W[:, i1:i2].clone()
        E1 = torch.empty(rows, n, dtype=dtype, device=dev)
        U1 = U[i1:i2, i1:i2]
        for i in range(n):
            c = i1 + i
            s, z = scales[:, c // G], zeros[:, c // G]
            w = W1[:, i]
            q = torch.clamp(torch.round(w.to(torch.float32) / s) + z, 0, qmax)
            wq = (q - z) * s
            codes[:, c] = q.to(torch.uint8)
            Q[:, c] = wq
            e = (w - wq.to(dtype)) / U1[i, i]
            if i + 1 < n:
                W1[:, i + 1:] -= torch.outer(e, U1[i, i + 1:])
            E1[:, i] = e
        if i2 < cols:
            W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return codes.cpu(), Q.cpu(), d  # the results back on the host (and the device synchronised), as qsweep's


def rel_loss(W, Wq, H):
    """tr(D H Dᵀ)/tr(W H Wᵀ), D = W − ŵ: the layer's relative output error on the calibration set."""
    D = (W - Wq).to(torch.float64)
    W = W.to(torch.float64)
    return float(((D @ H) * D).sum() / ((W @ H) * W).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=None, help="default: the manifest's (qsweep's)")
    ap.add_argument("--reps", type=int, default=None, help="default: the manifest's")
    ap.add_argument("--no-loss", action="store_true", help="skip the relative output-error column")
    ap.add_argument("--only", default="", help="comma-separated layer names")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (TF32 off): run the PyTorch GPTQ there")
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.dir, "manifest.json")))
    threads = a.threads or man["threads"]
    reps = a.reps or man["reps"]
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    bits, group = man["grid"]["bits"], man["grid"]["group_size"]
    damp, block = man["gptq"]["damp"], man["gptq"]["block_size"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {reps}; "
          f"qsweep {man['threads']} threads", file=sys.stderr)

    results = []
    xtx_cache = {}
    only = set(x for x in a.only.split(",") if x)
    for L in man["layers"]:
        if only and L["name"] not in only:
            continue
        W = torch.from_numpy(np.load(os.path.join(a.dir, L["w"])))
        if L["xtx"] not in xtx_cache:
            xtx_cache = {L["xtx"]: torch.from_numpy(np.load(os.path.join(a.dir, L["xtx"])))}
        xtx = xtx_cache[L["xtx"]]
        wq_qs = torch.from_numpy(np.load(os.path.join(a.dir, L["wq"])))
        codes_qs = torch.from_numpy(np.load(os.path.join(a.dir, L["codes"])))
        r = {"name": L["name"], "out": L["out"], "in": L["in"], "tokens": L["tokens"],
             "qsweep_s": L["qsweep_seconds"]}
        outs = {}
        for tag, dt in (("fp32", torch.float32), ("fp64", torch.float64)):
            best = math.inf
            for _ in range(reps):
                t0 = time.perf_counter()
                codes, Q, d = gptq(W.to(a.device), xtx.to(a.device), L["tokens"], dt, bits, group, damp, block)
                best = min(best, time.perf_counter() - t0)
            outs[tag] = (codes, Q)
            r[f"torch_{tag}_s"] = best
            r[f"ratio_{tag}"] = best / L["qsweep_seconds"]
            r[f"damp_{tag}"] = d
            r[f"maxdiff_{tag}"] = float((Q - wq_qs).abs().max())
            r[f"same_codes_{tag}"] = float((codes == codes_qs).double().mean())
            r[f"same_values_{tag}"] = float((Q == wq_qs).double().mean())
        if not a.no_loss:
            H = 2.0 * xtx / L["tokens"]
            r["loss_qsweep"] = rel_loss(W, wq_qs, H)
            r["loss_fp32"] = rel_loss(W, outs["fp32"][1], H)
            r["loss_fp64"] = rel_loss(W, outs["fp64"][1], H)
        results.append(r)
        print(f"{r['name']:<18} [{r['out']}x{r['in']}] qsweep {r['qsweep_s']:.4f}s  torch fp32 "
              f"{r['torch_fp32_s']:.4f}s fp64 {r['torch_fp64_s']:.4f}s", file=sys.stderr)

    json.dump({"threads": threads, "reps": reps, "torch": torch.__version__, "layers": results},
              open(os.path.join(a.dir, "torch_results.json"), "w"), indent=2)

    def e(x):
        return f"{x:.1e}" if x else "0"

    print(f"\nGPTQ W{bits} g{group}, damp {damp}, block {block}, no act-order; {threads} threads; "
          f"seconds are best of {reps}; ratio = torch s / qsweep s (> 1: qsweep faster)\n")
    print("| layer | shape [out x in] | qsweep s | torch fp32 s | torch fp64 s | fp32/qsweep | fp64/qsweep "
          "| max abs dŵ vs fp64 | same codes fp64 | same ŵ fp64 | max abs dŵ vs fp32 | same codes fp32 "
          + ("| rel. loss qsweep / fp32 / fp64 " if not a.no_loss else "") + "|")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if not a.no_loss else ""))
    for r in results:
        row = (f"| {r['name']} | {r['out']}x{r['in']} | {r['qsweep_s']:.4f} | {r['torch_fp32_s']:.4f} | "
               f"{r['torch_fp64_s']:.4f} | {r['ratio_fp32']:.2f} | {r['ratio_fp64']:.2f} | "
               f"{e(r['maxdiff_fp64'])} | {r['same_codes_fp64']:.6f} | {r['same_values_fp64']:.6f} | "
               f"{e(r['maxdiff_fp32'])} | {r['same_codes_fp32']:.6f} |")
        if not a.no_loss:
            row += f" {r['loss_qsweep']:.6g} / {r['loss_fp32']:.6g} / {r['loss_fp64']:.6g} |"
        print(row)
    for src in ("real", "synthetic"):
        names = [L["name"] for L in man["layers"] if L["source"] == src]
        rs = [r for r in results if r["name"] in names]
        if rs:
            q = sum(r["qsweep_s"] for r in rs)
            f32 = sum(r["torch_fp32_s"] for r in rs)
            f64 = sum(r["torch_fp64_s"] for r in rs)
            print(f"| **total {src}** | | {q:.4f} | {f32:.4f} | {f64:.4f} | {f32 / q:.2f} | {f64 / q:.2f} |"
                  + " |" * (5 + (0 if a.no_loss else 1)))


if __name__ == "__main__":
    main()
