#!/usr/bin/env python3
"""cublas_shapes.py — cuBLAS's own FP32 throughput (through torch.matmul, TF32 off) on the GEMM
shapes of one decoder block of a model folder, for issue 12's "forward at ≥ 50% of cuBLAS's own
throughput for the same GEMM shapes": qsweep eval prints its forward GFLOP/s (attention included,
llama.cpp's count); this prints the block's linear GEMMs' GFLOP/s when run back to back by
cuBLAS alone, the ceiling for an FP32 forward.

usage: cublas_shapes.py MODEL_DIR [--rows 4096] [--reps 20]
prints: "cublas block GEMMs: G GFLOP/s (S ms per block at R rows)"
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    c = json.load(open(f"{a.model}/config.json"))
    H, I = c["hidden_size"], c["intermediate_size"]
    hd = c.get("head_dim") or H // c["num_attention_heads"]
    Q, KV = c["num_attention_heads"] * hd, c.get("num_key_value_heads", c["num_attention_heads"]) * hd
    shapes = [(Q + 2 * KV, H), (H, Q), (2 * I, H), (H, I)]  # (out, in) of the fused linears
    x = {k: torch.randn(a.rows, k, device="cuda") for k in {s[1] for s in shapes}}
    w = [torch.randn(o, i, device="cuda") for o, i in shapes]
    flops = sum(2.0 * a.rows * o * i for o, i in shapes)
    for _ in range(3):
        for (o, i), wi in zip(shapes, w):
            x[i] @ wi.t()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.reps):
        for (o, i), wi in zip(shapes, w):
            x[i] @ wi.t()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / a.reps
    print(f"cublas block GEMMs: {flops / dt / 1e9:.0f} GFLOP/s ({dt * 1e3:.2f} ms per block at {a.rows} rows)")


if __name__ == "__main__":
    main()
