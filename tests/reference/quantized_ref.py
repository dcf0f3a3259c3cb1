#!/usr/bin/env python3
"""Dequantized weights of a qsweep quantized.h5, read apart from the C++ code: codes are a
little-endian bit stream of `bits` bits per weight (row-major), scales and zeros one per row and
group (groups of group_size columns, the last one possibly shorter; g_idx when act-order wrote
one), ŵ = (code − zero) · scale. AWQ's folded norms (in /blocks) are not applied here."""
import h5py
import numpy as np


def dequantized(f, name):
    """ŵ [out, in] float64 of layer `name` (e.g. model.layers.0.self_attn.q_proj) in open file f."""
    g = f["/layers/" + name]
    rows, cols = int(g.attrs["out_features"]), int(g.attrs["in_features"])
    bits, n = int(g.attrs["bits"]), rows * cols
    bitsarr = np.unpackbits(g["codes"][...], bitorder="little")[:n * bits].reshape(n, bits)
    codes = (bitsarr @ (1 << np.arange(bits))).astype(np.float64).reshape(rows, cols)
    scales = g["scales"][...].astype(np.float64).reshape(rows, -1)
    zeros = g["zeros"][...].astype(np.float64).reshape(rows, -1)
    if "g_idx" in g:
        gi = g["g_idx"][...]
    else:
        gs = int(g.attrs["group_size"])
        gi = np.arange(cols) // gs if gs > 0 else np.zeros(cols, dtype=int)
    return (codes - zeros[:, gi]) * scales[:, gi]


def quantized_weights(weights, path):
    """A copy of the weights dict with every layer stored in quantized.h5 replaced by ŵ."""
    w = dict(weights)
    with h5py.File(path, "r") as f:
        if "awq" in str(f.attrs.get("method", "")):
            raise ValueError(f"{path}: AWQ files fold scales into norms; not supported here")
        for n in f["layers"]:
            w[n + ".weight"] = dequantized(f, n)
    return w
