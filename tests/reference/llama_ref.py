#!/usr/bin/env python3
"""Independent float64 NumPy reference of the Hugging Face Llama-family forward pass.

Purpose: the qsweep C++ test suite builds small synthetic checkpoints and compares the C++
forward pass (logits, per-token NLL) against this script. It was written apart from the C++
code, straight from the Hugging Face `transformers` semantics, so that a shared
misunderstanding is unlikely to hide in both. It deliberately depends on NumPy only: no torch,
no `safetensors` package (the file format is parsed by hand below).

Supported: model_type llama | mistral | qwen2 | qwen3 | minicpm; GQA; optional q/k/v/o and MLP
biases; tied or untied lm_head; rope_scaling None or "llama3"; F32 / F16 / BF16 (and F64)
tensors; a single model.safetensors or a sharded checkpoint with model.safetensors.index.json.
Family extras, as transformers' Qwen3 and MiniCPM (openbmb/MiniCPM-2B modeling_minicpm.py) code:
  qwen3: q = q_norm(q_proj(h).view(..., head_dim)), k likewise (RMSNorm over each head, eps
         rms_norm_eps), before RoPE; head_dim defaults to 128 (Qwen3Config), not hidden/heads.
  minicpm: inputs_embeds = embed_tokens(ids) * scale_emb; each decoder layer adds its attention
         and MLP outputs as residual + out * (scale_depth / sqrt(num_hidden_layers)); logits =
         lm_head(norm(h) / (hidden_size / dim_model_base)); MiniCPMConfig defaults scale_emb =
         scale_depth = dim_model_base = 1 and tie_word_embeddings = True.
Not supported: sliding-window attention (refused if the sequence is longer than the window).

Usage:
    /usr/bin/python3 tests/reference/llama_ref.py MODEL_DIR --ids 1,5,7 [--out FILE.json]
Output JSON: {"logits": [[vocab floats] per position],
              "nll": [-log softmax(logits[i])[ids[i+1]] for i < n-1]}
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ----------------------------------------------------------------------------------------------
# safetensors parsing
# ----------------------------------------------------------------------------------------------
# Layout: u64 little-endian header length N, then N bytes of JSON header
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, optional "__metadata__"}, then the
# data section; offsets are relative to the start of the data section (8 + N).
_NP_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


def _decode(raw, dtype, shape):
    """Turn the raw bytes of one tensor into a float64 array of the given shape."""
    if dtype == "BF16":
        # bfloat16 is the top half of an IEEE float32: widen to u32, shift, reinterpret.
        u16 = np.frombuffer(raw, dtype="<u2")
        arr = (u16.astype(np.uint32) << 16).view(np.float32)
    elif dtype in _NP_DTYPES:
        arr = np.frombuffer(raw, dtype=_NP_DTYPES[dtype])
    else:
        raise ValueError(f"unsupported safetensors dtype {dtype}")
    return arr.astype(np.float64).reshape(shape)


def read_safetensors(path):
    """Return {name: float64 ndarray} for every tensor in one .safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = memoryview(blob)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = _decode(data[b:e], info["dtype"], info["shape"])
    return out


def load_weights(model_dir):
    """Load a single-file or sharded (index.json) checkpoint into one dict."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        weights = {}
        for shard in sorted(set(weight_map.values())):
            weights.update(read_safetensors(os.path.join(model_dir, shard)))
        return weights
    return read_safetensors(os.path.join(model_dir, "model.safetensors"))


# ----------------------------------------------------------------------------------------------
# RoPE
# ----------------------------------------------------------------------------------------------
def rope_inv_freq(cfg, head_dim):
    """inv_freq[i] = 1 / theta^(2i/d), optionally adjusted as HF `_compute_llama3_parameters`."""
    theta = float(cfg.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv_freq
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv_freq
    if kind != "llama3":
        raise ValueError(f"unsupported rope_scaling type {kind!r}")
    factor = float(rs["factor"])
    low_ff = float(rs["low_freq_factor"])
    high_ff = float(rs["high_freq_factor"])
    old_ctx = float(rs["original_max_position_embeddings"])
    low_freq_wavelen = old_ctx / low_ff
    high_freq_wavelen = old_ctx / high_ff
    wavelen = 2 * math.pi / inv_freq
    # Long wavelengths (low frequencies) are divided by factor; short ones are kept.
    inv_llama = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    # In between: interpolate with a smooth factor (same expression order as transformers).
    smooth = (old_ctx / wavelen - low_ff) / (high_ff - low_ff)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(is_medium, smoothed, inv_llama)


def rotate_half(x):
    """HF convention: split the last dim in halves (x1, x2) and return concat(-x2, x1)."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, cos, sin):
    """x: [heads, seq, head_dim]; cos/sin: [seq, head_dim]."""
    return x * cos[None] + rotate_half(x) * sin[None]


# ----------------------------------------------------------------------------------------------
# Forward pass
# ----------------------------------------------------------------------------------------------
def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def linear(x, W, name, weights):
    """x @ W.T, plus `name.bias` when the checkpoint has one."""
    y = x @ W.T
    b = weights.get(name + ".bias")
    return y if b is None else y + b


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(cfg, weights, ids):
    """Return float64 logits [seq, vocab] for the token ids (one sequence, positions 0..n-1)."""
    model_type = cfg.get("model_type", "llama")
    if model_type not in ("llama", "mistral", "qwen2", "qwen3", "minicpm"):
        raise ValueError(f"unsupported model_type {model_type!r}")
    hidden = cfg["hidden_size"]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_heads
    head_dim = cfg.get("head_dim") or (128 if model_type == "qwen3" else hidden // n_heads)
    eps = float(cfg["rms_norm_eps"])
    n_layers = cfg["num_hidden_layers"]
    minicpm = model_type == "minicpm"
    qk_norm = model_type == "qwen3"
    # MiniCPM's muP factors (1 for the other families, where they are not applied at all).
    scale_emb = float(cfg.get("scale_emb", 1)) if minicpm else 1.0
    residual_mult = float(cfg.get("scale_depth", 1)) / math.sqrt(n_layers) if minicpm else 1.0
    logit_div = hidden / float(cfg.get("dim_model_base", 1)) if minicpm else 1.0
    tied_default = minicpm  # MiniCPMConfig(tie_word_embeddings=True); the others default False
    n = len(ids)
    window = cfg.get("sliding_window")
    uses_window = cfg.get("model_type") == "mistral" or cfg.get("use_sliding_window", False)
    if uses_window and window is not None and n > window:
        raise ValueError("sequence longer than sliding_window: not supported by this reference")

    W = lambda name: weights[name]  # noqa: E731  (KeyError names the missing tensor)
    x = W("model.embed_tokens.weight")[np.asarray(ids)]  # [n, hidden]
    if minicpm:
        x = x * scale_emb

    # RoPE tables: angle[p, i] = p * inv_freq[i]; cos/sin = concat(angle, angle).
    inv_freq = rope_inv_freq(cfg, head_dim)
    angle = np.arange(n, dtype=np.float64)[:, None] * inv_freq[None, :]
    emb = np.concatenate([angle, angle], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)

    causal = np.triu(np.ones((n, n), dtype=bool), k=1)  # True above the diagonal = masked
    group = n_heads // n_kv
    scale = 1.0 / math.sqrt(head_dim)

    def residual_add(x, out):
        return x + out * residual_mult if minicpm else x + out

    for layer in range(n_layers):
        p = f"model.layers.{layer}."
        # --- self-attention ---
        h = rms_norm(x, W(p + "input_layernorm.weight"), eps)
        a = p + "self_attn."
        q = linear(h, W(a + "q_proj.weight"), a + "q_proj", weights)
        k = linear(h, W(a + "k_proj.weight"), a + "k_proj", weights)
        v = linear(h, W(a + "v_proj.weight"), a + "v_proj", weights)
        q = q.reshape(n, n_heads, head_dim)
        k = k.reshape(n, n_kv, head_dim)
        if qk_norm:  # Qwen3: RMSNorm over each head's vector, one [head_dim] weight for all heads
            q = rms_norm(q, W(a + "q_norm.weight"), eps)
            k = rms_norm(k, W(a + "k_norm.weight"), eps)
        q = q.transpose(1, 0, 2)  # [H, n, d]
        k = k.transpose(1, 0, 2)  # [KV, n, d]
        v = v.reshape(n, n_kv, head_dim).transpose(1, 0, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # GQA: query head h reads kv head h // group.
        kv_of = np.arange(n_heads) // group
        k, v = k[kv_of], v[kv_of]  # [H, n, d]
        scores = (q @ k.transpose(0, 2, 1)) * scale  # [H, n, n]
        scores = np.where(causal[None], -np.inf, scores)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, n_heads * head_dim)
        x = residual_add(x, linear(ctx, W(a + "o_proj.weight"), a + "o_proj", weights))
        # --- SwiGLU MLP ---
        h = rms_norm(x, W(p + "post_attention_layernorm.weight"), eps)
        m = p + "mlp."
        gate = linear(h, W(m + "gate_proj.weight"), m + "gate_proj", weights)
        up = linear(h, W(m + "up_proj.weight"), m + "up_proj", weights)
        x = residual_add(x, linear(silu(gate) * up, W(m + "down_proj.weight"), m + "down_proj", weights))

    x = rms_norm(x, W("model.norm.weight"), eps)
    if minicpm:
        x = x / logit_div
    if cfg.get("tie_word_embeddings", tied_default) or "lm_head.weight" not in weights:
        lm_head = W("model.embed_tokens.weight")
    else:
        lm_head = W("lm_head.weight")
    return x @ lm_head.T  # lm_head has no bias in these architectures


def next_token_nll(logits, ids):
    """nll[i] = -log softmax(logits[i])[ids[i+1]] for i < n-1 (stable log-sum-exp)."""
    z = logits[:-1]
    mx = z.max(axis=-1, keepdims=True)
    lse = (mx + np.log(np.exp(z - mx).sum(axis=-1, keepdims=True)))[:, 0]
    return lse - z[np.arange(len(z)), np.asarray(ids[1:])]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", help="folder with config.json and safetensors weights")
    ap.add_argument("--ids", required=True, help="comma-separated token ids, e.g. 1,5,7")
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    args = ap.parse_args(argv)

    ids = [int(t) for t in args.ids.split(",") if t.strip()]
    if not ids:
        ap.error("--ids is empty")
    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    logits = forward(cfg, load_weights(args.model_dir), ids)
    result = {"logits": logits.tolist(), "nll": next_token_nll(logits, ids).tolist()}
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
