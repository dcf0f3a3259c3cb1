#!/usr/bin/env python3
"""RTN written apart from the C++ code, to check qsweep's RTN on a real model by evaluation.

    /usr/bin/python3 bench/rtn_numpy.py MODEL_DIR OUT_DIR rows|flat BITS

Writes OUT_DIR: MODEL_DIR with every decoder linear replaced by its RTN dequantization (fp32,
group size 128, the project's asymmetric grid: range widened to hold 0, s = max(max-min, 1e-5)
/ (2^b-1), z = round(-min/s), round half to even), which `qsweep eval` then evaluates as a
full-precision model. Group layouts:
  rows  groups of 128 consecutive columns of each row, the last group of a row shorter when 128
        does not divide the width (qsweep's layout, and GPTQ's reference code's);
  flat  groups of 128 consecutive values of the row-major flattened matrix (`w.reshape(-1, 128)`),
        which cross row boundaries when 128 does not divide the width.
Used for the README's SmolLM2 RTN figures (see there).
"""
import json, os, shutil, struct, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_ref
src, dst, mode, bits = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode not in ("rows", "flat"):
    sys.exit(f"rtn_numpy.py: layout {mode!r} is not rows or flat")
G = 128
W = llama_ref.load_weights(src)
def rtn_groups(g):  # g: [n, G'] float32 rows = groups
    mx = np.maximum(g.max(1, keepdims=True), 0).astype(np.float32)
    mn = np.minimum(g.min(1, keepdims=True), 0).astype(np.float32)
    qmax = 2**bits - 1
    s = (np.maximum(mx - mn, np.float32(1e-5)) / np.float32(qmax)).astype(np.float32)
    z = np.clip(np.rint(-mn / s), 0, qmax)
    q = np.clip(np.rint(g / s) + z, 0, qmax)
    return ((q - z) * s).astype(np.float32)
out = {}
for k, v in W.items():
    v = np.asarray(v, dtype=np.float32)
    if any(p in k for p in ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]):
        o, i = v.shape
        if mode == "flat":
            v = rtn_groups(v.reshape(-1, G)).reshape(o, i)
        elif mode == "rows":  # the last group of a row shorter
            parts = []
            for c0 in range(0, i, G):
                blk = v[:, c0:c0 + G]
                parts.append(rtn_groups(blk))
            v = np.concatenate(parts, 1)
    out[k] = v
os.makedirs(dst, exist_ok=True)
hdr, off, blobs = {}, 0, []
for k in sorted(out):
    b = out[k].astype("<f4").tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(out[k].shape), "data_offsets": [off, off + len(b)]}
    off += len(b); blobs.append(b)
h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
with open(dst + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for b in blobs: f.write(b)
for fn in ["config.json", "tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(os.path.join(src, fn), dst)
