#!/usr/bin/env python3
"""Perplexity with the independent float64 NumPy reference (llama_ref.py), for fixtures.

Usage:
    python3 tests/reference/ppl_ref.py MODEL_DIR IDS_FILE --protocol gptq|llamacpp [--ctx 256]
    python3 tests/reference/ppl_ref.py MODEL_DIR --text FILE --protocol ... [--max-windows N]

IDS_FILE is in qsweep's pre-tokenized format ("#qsweep-token-ids v1" + ids, no special tokens),
e.g. from `qsweep tokenize`; its sequence is [BOS] + ids (config.json's bos_token_id), as for a
model folder without a tokenizer. With --text, the text is tokenized here by the Hugging Face
tokenizers library (the Rust implementation, from PyPI: run this with a python that has it, e.g.
the test venv of scripts/test_venv.sh) on MODEL_DIR/tokenizer.json, with the tokenizer's own
special tokens (`add_special_tokens=True`: its post-processor decides, e.g. [BOS] for Llama-3,
nothing for SmolLM2); tokenizer_config.json's add_bos_token, when set, overrides, as transformers
does. The protocols are re-implemented here from their definitions, apart from the C++ code:
  gptq:     prefix+ids, windows of ctx, positions 0..ctx-2 scored, ppl = exp(mean of window means)
  llamacpp: prefix+ids (one trailing newline of the text dropped), floor(N/ctx) chunks, first
            token of each chunk := BOS when the tokenizer adds BOS, positions ctx/2..ctx-2
            scored, ppl = exp(mean over all scored tokens)
--max-windows N scores only the first N windows. Prints JSON {"ppl", "n_windows",
"tokens_scored", "n_tokens"}.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402


def hf_tokens(model_dir, text):
    """(ids with the tokenizer's own special tokens, adds_bos, bos_id) from the Rust library."""
    from tokenizers import Tokenizer  # the Hugging Face tokenizers library (PyPI)

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    ids = tok.encode(text, add_special_tokens=True).ids
    prefix = tok.encode("", add_special_tokens=True).ids
    cfg_path = os.path.join(model_dir, "tokenizer_config.json")
    tcfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
    bos = tcfg.get("bos_token")
    if isinstance(bos, dict):
        bos = bos.get("content")
    bos_id = tok.token_to_id(bos) if isinstance(bos, str) else None
    add_bos = tcfg.get("add_bos_token")
    if isinstance(add_bos, bool) and bos_id is not None:
        has = bool(prefix) and prefix[0] == bos_id
        if add_bos and not has:
            ids, prefix = [bos_id] + ids, [bos_id] + prefix
        elif not add_bos and has:
            ids, prefix = ids[1:], prefix[1:]
    adds_bos = bool(prefix) and bos_id is not None and prefix[0] == bos_id
    return ids, adds_bos, bos_id


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("ids_file", nargs="?")
    ap.add_argument("--text", help="a text file, tokenized here with the tokenizers library")
    ap.add_argument("--protocol", choices=["gptq", "llamacpp"], required=True)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--max-windows", type=int, default=0)
    a = ap.parse_args()
    with open(os.path.join(a.model_dir, "config.json")) as f:
        cfg = json.load(f)
    if a.text:
        text = open(a.text, encoding="utf-8").read()
        if a.protocol == "llamacpp" and text.endswith("\n"):
            text = text[:-1]
        toks, adds_bos, bos = hf_tokens(a.model_dir, text)
    else:
        with open(a.ids_file) as f:
            header = f.readline().strip()
            assert header == "#qsweep-token-ids v1", header
            ids = [int(t) for t in f.read().split()]
        bos = cfg.get("bos_token_id", 1)
        toks, adds_bos = [bos] + ids, True
    weights = llama_ref.load_weights(a.model_dir)
    n_win = len(toks) // a.ctx
    if a.max_windows:
        n_win = min(n_win, a.max_windows)
    window_means, nll_sum, scored = [], 0.0, 0
    for w in range(n_win):
        win = toks[w * a.ctx:(w + 1) * a.ctx]
        if a.protocol == "llamacpp" and adds_bos:
            win = [bos] + win[1:]
        logits = llama_ref.forward(cfg, weights, win)
        nll = np.asarray(llama_ref.next_token_nll(logits, win))  # nll[i] predicts win[i+1]
        part = nll if a.protocol == "gptq" else nll[a.ctx // 2:]
        window_means.append(part.mean())
        nll_sum += part.sum()
        scored += len(part)
    ppl = math.exp(np.mean(window_means)) if a.protocol == "gptq" else math.exp(nll_sum / scored)
    print(json.dumps({"ppl": ppl, "n_windows": n_win, "tokens_scored": scored, "n_tokens": len(toks)}))


if __name__ == "__main__":
    main()
