#!/usr/bin/env python3
"""hf_eval.py — perplexity of a model folder with Hugging Face transformers (PyTorch), the
comparison point of qsweep eval on a GPU (issue 12: ≥ 1.5× transformers' tokens/s).

Same protocol as qsweep's gptq one on a pre-tokenized file: the file's ids, with config.json's
bos_token_id put first when the folder has no tokenizer (as qsweep does: the make-model presets),
non-overlapping windows of --ctx (remainder dropped), positions 0..ctx-2 predict the next token,
ppl = exp(mean over windows of the window's mean NLL). fp32 weights and compute, TF32 off (as
qsweep's CUDA path), --batch windows per forward; tokens/s counts every window token, timed with
the device synchronised, the model load excluded, after one warm-up batch (not counted).

usage: hf_eval.py MODEL_DIR IDS_FILE --ctx N [--batch B] [--device cuda|cpu]
prints: "hf perplexity: P" and "hf tokens/s: T (S s for W windows)"
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def read_ids(path):
    with open(path) as f:
        first = f.readline()
        if not first.startswith("#qsweep-token-ids"):
            sys.exit(f"{path}: not a qsweep pre-tokenized file (first line '#qsweep-token-ids v1')")
        return [int(t) for t in f.read().split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("ids")
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="the model's dtype (bfloat16: compare with qsweep --compute-dtype bf16)")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ids = read_ids(a.ids)
    has_tokenizer = any(os.path.exists(os.path.join(a.model, f)) for f in ("tokenizer.json", "tokenizer.model"))
    bos = json.load(open(os.path.join(a.model, "config.json"))).get("bos_token_id")
    if has_tokenizer:
        sys.exit(f"{a.model} has a tokenizer: qsweep adds its own special tokens, which this script does not model; "
                 "use a tokenizer-less folder (qsweep make-model)")
    if bos is not None:
        ids = [int(bos)] + ids
    n = len(ids) // a.ctx
    if n == 0:
        sys.exit(f"{a.ids}: {len(ids)} ids, fewer than one window of {a.ctx}")
    windows = torch.tensor(ids[: n * a.ctx], dtype=torch.long).view(n, a.ctx)
    # transformers 4.56 renamed torch_dtype to dtype (5.x warns about or refuses the old name).
    ver = tuple(int(v) for v in transformers.__version__.split(".")[:2] if v.isdigit())
    kw = {"dtype" if ver >= (4, 56) else "torch_dtype": getattr(torch, a.dtype)}
    model = AutoModelForCausalLM.from_pretrained(a.model, **kw).to(a.device).eval()
    got = next(model.parameters()).dtype
    if got != getattr(torch, a.dtype):
        sys.exit(f"transformers loaded {a.model} in {got}, not {a.dtype}")
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    nll = []
    with torch.inference_mode():
        model(windows[: a.batch].to(a.device))  # warm-up
        sync()
        t0 = time.perf_counter()
        for b in range(0, n, a.batch):
            x = windows[b : b + a.batch].to(a.device)
            logits = model(x).logits.float()
            lp = torch.log_softmax(logits[:, :-1], dim=-1)
            tok = lp.gather(-1, x[:, 1:].unsqueeze(-1)).squeeze(-1)
            nll.extend((-tok.double().mean(dim=1)).tolist())
        sync()
        dt = time.perf_counter() - t0
    print(f"hf perplexity: {math.exp(sum(nll) / len(nll)):.10f}")
    print(f"hf tokens/s: {n * a.ctx / dt:.0f} ({dt:.3f} s for {n} windows)")


if __name__ == "__main__":
    main()
