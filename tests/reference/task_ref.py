#!/usr/bin/env python3
"""Multiple-choice scores from the float64 NumPy reference forward (llama_ref.py), written from
the definitions apart from the C++ code, for `qsweep eval --tasks`.

For each task of a JSON Lines task file ({"context", "choices", "gold"}) and each choice:
  sequence      = tokenizer(context + choice) with the tokenizer's own special tokens (the Rust
                  tokenizers library on MODEL_DIR/tokenizer.json, as ppl_ref.py);
  choice tokens = those after the longest common prefix of the sequence and tokenizer(context);
  logprob       = Σ log softmax(logits[p-1])[seq[p]] over the choice tokens      -> acc
  logprob / characters of the choice (Python len)                                -> acc_norm
  llama.cpp     = mean log p of the tokens after the common prefix of all the task's sequences
                  (at most the shortest length - 1), as llama-perplexity --hellaswag  -> acc_llamacpp
Prediction: the first index of the maximum.

Usage: task_ref.py MODEL_DIR TASKS.jsonl [--max-tasks N]   (run with a python that has
`tokenizers`, e.g. the test venv). Prints JSON {"logprob": [[...] per task], "llamacpp": [...],
"pred", "pred_norm", "pred_llamacpp", "acc", "acc_norm", "acc_llamacpp"}.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from ppl_ref import hf_tokens  # noqa: E402


def common(a, b):
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def first_argmax(v):
    best = 0
    for i in range(1, len(v)):
        if v[i] > v[best]:
            best = i
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("tasks")
    ap.add_argument("--max-tasks", type=int, default=0)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    weights = llama_ref.load_weights(a.model_dir)
    tasks = [json.loads(l) for l in open(a.tasks, encoding="utf-8") if l.strip()]
    if a.max_tasks:
        tasks = tasks[:a.max_tasks]
    out = {k: [] for k in ("logprob", "llamacpp", "pred", "pred_norm", "pred_llamacpp")}
    correct = [0, 0, 0]
    for t in tasks:
        ctx_ids = hf_tokens(a.model_dir, t["context"])[0]
        seqs = [hf_tokens(a.model_dir, t["context"] + c)[0] for c in t["choices"]]
        cp = min(common(seqs[0], s) for s in seqs[1:])
        cp = min(cp, min(len(s) for s in seqs) - 1)
        lp, norm, lc = [], [], []
        for c, s in zip(t["choices"], seqs):
            z = llama_ref.forward(cfg, weights, s)
            logp = -llama_ref.next_token_nll(z, s)  # logp[p-1] = log p(s[p] | s[:p])
            k = common(ctx_ids, s)
            lp.append(float(logp[k - 1:].sum()))
            norm.append(lp[-1] / len(c))
            lc.append(float(logp[cp - 1:].mean()))
        preds = [first_argmax(lp), first_argmax(norm), first_argmax(lc)]
        for i in range(3):
            correct[i] += preds[i] == t["gold"]
        out["logprob"].append(lp)
        out["llamacpp"].append(lc)
        out["pred"].append(preds[0])
        out["pred_norm"].append(preds[1])
        out["pred_llamacpp"].append(preds[2])
    n = len(tasks)
    out["acc"], out["acc_norm"], out["acc_llamacpp"] = (c / n for c in correct)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
