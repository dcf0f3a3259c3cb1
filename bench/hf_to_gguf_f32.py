#!/usr/bin/env python3
"""hf_to_gguf_f32.py — an all-F32 GGUF of a small Llama-architecture HF folder with a
sentencepiece tokenizer.model (kjv-llama), for side-by-side runs against llama.cpp
(bench/vs_llamacpp.sh). Our own converter, written from the GGUF key and tensor naming that
llama.cpp documents: q/k rows are permuted to llama.cpp's interleaved RoPE layout.

Usage: hf_to_gguf_f32.py MODEL_DIR OUT.gguf   (needs numpy, gguf and sentencepiece from PyPI)
"""
import json
import struct
import sys

import numpy as np
import sentencepiece as spm
from gguf import GGMLQuantizationType, GGUFWriter


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            assert t["dtype"] == "F32", f"{name}: {t['dtype']} (expected the fp32 checkpoint)"
            b, e = t["data_offsets"]
            f.seek(base + b)
            out[name] = np.frombuffer(f.read(e - b), dtype="<f4").reshape(t["shape"])
        return out


def permute(w, n_head):  # HF rotate_half rows -> llama.cpp's interleaved pairs
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    cfg = json.load(open(f"{src}/config.json"))
    t = read_safetensors(f"{src}/model.safetensors")
    sp = spm.SentencePieceProcessor(model_file=f"{src}/tokenizer.model")
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", H // nh)
    w = GGUFWriter(dst, "llama")
    w.add_name("kjv-llama")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(H)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(0)  # ALL_F32
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    w.add_tensor("token_embd.weight", t["model.embed_tokens.weight"], raw_dtype=GGMLQuantizationType.F32)
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in names.items():
            a = t[f"model.layers.{i}.{hf}.weight"]
            if gg == "attn_q":
                a = permute(a, nh)
            elif gg == "attn_k":
                a = permute(a, nkv)
            w.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(a), raw_dtype=GGMLQuantizationType.F32)
    w.add_tensor("output_norm.weight", t["model.norm.weight"], raw_dtype=GGMLQuantizationType.F32)
    w.add_tensor("output.weight", t["lm_head.weight"], raw_dtype=GGMLQuantizationType.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
