#!/usr/bin/env python3
"""Perplexity with the independent float64 NumPy reference (llama_ref.py), for fixtures.

Usage:
    /usr/bin/python3 tests/reference/ppl_ref.py MODEL_DIR IDS_FILE --protocol gptq|llamacpp [--ctx 256]

IDS_FILE is in qsweep's pre-tokenized format ("#qsweep-token-ids v1" + ids, no BOS), e.g. from
`qsweep tokenize` (whose ids the tests check against the PyTorch reference's). The protocols are
re-implemented here from their definitions, apart from the C++ code:
  gptq:     [BOS]+ids, windows of ctx, positions 0..ctx-2 scored, ppl = exp(mean of window means)
  llamacpp: [BOS]+ids, floor(N/ctx) chunks, first token of each chunk := BOS, positions
            ctx/2..ctx-2 scored, ppl = exp(mean over all scored tokens)
Prints JSON {"ppl", "n_windows", "tokens_scored"}.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("ids_file")
    ap.add_argument("--protocol", choices=["gptq", "llamacpp"], required=True)
    ap.add_argument("--ctx", type=int, default=256)
    a = ap.parse_args()
    with open(a.ids_file) as f:
        header = f.readline().strip()
        assert header == "#qsweep-token-ids v1", header
        ids = [int(t) for t in f.read().split()]
    with open(os.path.join(a.model_dir, "config.json")) as f:
        cfg = json.load(f)
    bos = cfg.get("bos_token_id", 1)
    weights = llama_ref.load_weights(a.model_dir)
    toks = [bos] + ids
    n_win = len(toks) // a.ctx
    window_means, nll_sum, scored = [], 0.0, 0
    for w in range(n_win):
        win = toks[w * a.ctx:(w + 1) * a.ctx]
        if a.protocol == "llamacpp":
            win = [bos] + win[1:]
        logits = llama_ref.forward(cfg, weights, win)
        nll = np.asarray(llama_ref.next_token_nll(logits, win))  # nll[i] predicts win[i+1]
        part = nll if a.protocol == "gptq" else nll[a.ctx // 2:]
        window_means.append(part.mean())
        nll_sum += part.sum()
        scored += len(part)
    ppl = math.exp(np.mean(window_means)) if a.protocol == "gptq" else math.exp(nll_sum / scored)
    print(json.dumps({"ppl": ppl, "n_windows": n_win, "tokens_scored": scored}))


if __name__ == "__main__":
    main()
