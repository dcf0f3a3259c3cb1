#!/usr/bin/env python3
"""tokenizer_hf.py — the Rust `tokenizers` side of tokenizer_hf.sh.

  make-variants OUT SMOLLM2_TOKENIZER_JSON SMOLLM2_CONFIG_JSON TRAIN_TEXT
      Writes one model folder per tokenizer variant under OUT (tokenizer.json, and a config.json
      copied from SmolLM2 so that qsweep accepts the folder), and prints their names:
        smollm2        the real SmolLM2 tokenizer (Digits + ByteLevel, 17 special tokens)
        gpt2           its vocabulary and merges behind GPT-2's pre-tokenizer (ByteLevel alone)
        llama3         the same behind Llama-3's Split regex (Isolated) + ByteLevel(use_regex=false)
        added          smollm2 + NFKC + added tokens with lstrip/rstrip/single_word/normalized
        spm-first      a BPE trained here (byte_fallback, <0xNN> tokens, unk) with Metaspace
                       prepend_scheme=first split=false, as Llama-2/Mistral exports with legacy=false
        spm-legacy     the same model with the older Prepend + Replace normalizer, no pre-tokenizer
        spm-split      the same with Metaspace prepend_scheme=always split=true, ignore_merges
  encode OUT_DIR VARIANTS_DIR NAME=TEXT...
      For each variant folder and each text, writes OUT_DIR/<variant>__<NAME>.ids (one id a line)
      with Tokenizer.from_file(...).encode(text, add_special_tokens=False).
  compare REF_DIR OUT_DIR
      Compares every REF_DIR/*.ids with OUT_DIR/*.ids (qsweep's "#qsweep-token-ids v1" files);
      prints the first difference of each pair; exit 1 on any difference.
"""
import copy
import glob
import json
import os
import sys

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def write_variant(out, name, tok, config, vocab_size=None, tokenizer_config=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    cfg = dict(config)
    if vocab_size:
        cfg["vocab_size"] = vocab_size
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    if tokenizer_config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f)
    print(name)


def added(id_, content, special=False, lstrip=False, rstrip=False, single_word=False, normalized=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def train_spm(train_text):
    """A small sentencepiece-style BPE (Llama-2 layout: <unk> <s> </s>, then <0x00>..<0xFF>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1200, show_progress=False, special_tokens=[], limit_alphabet=60)
    text = open(train_text, encoding="utf-8").read()[:1_000_000]
    tok.train_from_iterator(text.splitlines(), trainer=trainer)
    j = json.loads(tok.to_str())
    trained = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in trained:
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = j["model"]["merges"]
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": vocab, "merges": [m if isinstance(m, str) else " ".join(m) for m in merges]}
    decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    post = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added(0, "<unk>", special=True), added(1, "<s>", special=True),
                             added(2, "</s>", special=True)],
            "normalizer": None, "pre_tokenizer": None, "post_processor": post, "decoder": decoder,
            "model": model}


def make_variants(out, smol_json, smol_config, train_text):
    base = json.load(open(smol_json, encoding="utf-8"))
    config = json.load(open(smol_config))
    smol_dir = os.path.dirname(smol_json)
    tcfg_path = os.path.join(smol_dir, "tokenizer_config.json")
    tcfg = json.load(open(tcfg_path)) if os.path.exists(tcfg_path) else None
    write_variant(out, "smollm2", base, config, tokenizer_config=tcfg)

    gpt2 = copy.deepcopy(base)
    gpt2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    write_variant(out, "gpt2", gpt2, config)

    llama3 = copy.deepcopy(base)
    llama3["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    write_variant(out, "llama3", llama3, config)

    add = copy.deepcopy(base)
    add["normalizer"] = {"type": "NFKC"}
    n = 49152
    add["added_tokens"] += [
        added(n, "<mask>", special=True, lstrip=True),
        added(n + 1, "</tag>", special=True, lstrip=True, rstrip=True),
        added(n + 2, "LORD", single_word=True),
        added(n + 3, "Jerusalem", rstrip=True),
        added(n + 4, "ｈｅａｖｅｎ", normalized=True),  # matched as "heaven" after NFKC
        added(n + 5, "Moses", normalized=True, single_word=True),
        added(n + 6, "<tag>", special=True),
        added(n + 7, "snake_case", single_word=True),
        added(n + 8, "Pharaoh", lstrip=True, rstrip=True),
    ]
    # Tokens already in the vocabulary would keep their vocabulary id: keep the test about matching.
    assert not any(t["content"] in base["model"]["vocab"] for t in add["added_tokens"][-9:])
    write_variant(out, "added", add, config, vocab_size=n + 9)

    spm = train_spm(train_text)
    first = copy.deepcopy(spm)
    first["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    write_variant(out, "spm-first", first, config)

    legacy = copy.deepcopy(spm)
    legacy["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    legacy["added_tokens"].append(added(len(spm["model"]["vocab"]), "<sep>", normalized=True))
    write_variant(out, "spm-legacy", legacy, config)

    split = copy.deepcopy(spm)
    split["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    split["model"]["ignore_merges"] = True
    split["model"]["merges"] = [m.split(" ") for m in split["model"]["merges"]]  # the newer pair form
    split["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    write_variant(out, "spm-split", split, config)


def encode(out, variants_dir, named_texts):
    from tokenizers import Tokenizer
    os.makedirs(out, exist_ok=True)
    texts = []
    for nt in named_texts:
        name, path = nt.split("=", 1)
        with open(path, encoding="utf-8", newline="") as f:
            texts.append((name, f.read()))
    for d in sorted(glob.glob(os.path.join(variants_dir, "*", "tokenizer.json"))):
        variant = os.path.basename(os.path.dirname(d))
        tok = Tokenizer.from_file(d)
        for name, text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            with open(os.path.join(out, f"{variant}__{name}.ids"), "w") as f:
                f.write("".join(f"{i}\n" for i in ids))


def read_ids(path):
    with open(path) as f:
        body = f.read()
    if body.startswith("#qsweep-token-ids v1"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    return [int(x) for x in body.split()]


def compare(ref_dir, out_dir):
    bad = 0
    refs = sorted(glob.glob(os.path.join(ref_dir, "*.ids")))
    for ref in refs:
        name = os.path.basename(ref)
        mine = os.path.join(out_dir, name)
        if not os.path.exists(mine):
            print(f"FAIL {name}: qsweep wrote no ids")
            bad += 1
            continue
        a, b = read_ids(ref), read_ids(mine)
        if a == b:
            print(f"PASS {name}: {len(a)} tokens")
            continue
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        print(f"FAIL {name}: {len(b)} tokens vs the Rust library's {len(a)}; first difference at "
              f"token {i}: qsweep {b[max(0, i - 3):i + 4]} vs Rust {a[max(0, i - 3):i + 4]}")
        bad += 1
    print(f"{len(refs) - bad}/{len(refs)} tokenizations identical to the Rust library")
    return 1 if bad or not refs else 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "make-variants" and len(sys.argv) == 6:
        make_variants(*sys.argv[2:6])
    elif cmd == "encode" and len(sys.argv) >= 5:
        encode(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "compare" and len(sys.argv) == 4:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
