"""Exports a Hugging Face Llama-family folder (config.json + safetensors) to ONNX in the layout
@huggingface/transformers (transformers.js) loads for a decoder-only model:

    <out>/config.json, generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json
    <out>/onnx/model.onnx       fp32                               (dtype: 'fp32')
    <out>/onnx/model_q4.onnx    MatMul weights as com.microsoft::MatMulNBits, 4 bits, block 32, zero points
                                                                    (dtype: 'q4')
    <out>/reference/            PyTorch (tools/train-demo-model/llama.py) logits for verify.mjs

Graph inputs / outputs (names, dtypes, dynamic axis names as transformers.js reads them):
    input_ids                 int64   [batch_size, sequence_length]
    attention_mask            int64   [batch_size, past_sequence_length + sequence_length]
    position_ids              int64   [batch_size, sequence_length]
    past_key_values.{i}.key   float32 [batch_size, num_kv_heads, past_sequence_length, head_dim]   (and .value)
 -> logits                    float32 [batch_size, sequence_length, vocab]
    present.{i}.key           float32 [batch_size, num_kv_heads, past_sequence_length + sequence_length, head_dim]

Usage (Debian's python, which has torch + onnx):
    /usr/bin/python3 tools/export-onnx/export.py models/kjv-llama-tiny /tmp/kjv-onnx
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # no __pycache__ next to llama.py
sys.path.insert(0, os.path.join(HERE, "..", "train-demo-model"))
import llama  # noqa: E402  (plain PyTorch Llama forward + numpy safetensors reader)

import onnx  # noqa: E402
from onnx import helper, numpy_helper, TensorProto  # noqa: E402

OPSET = 14
BLOCK = 32
COPY_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json"]
DEFAULT_PROMPTS = ["In the beginning God created", "And the LORD said unto Moses"]


# ---------------------------------------------------------------------------------------------- config

class Unsupported(Exception):
    pass


def check_config(cfg):
    """Returns a normalised copy of cfg, or raises Unsupported naming what this exporter does not implement."""
    c = dict(cfg)
    mt = c.get("model_type")
    if mt != "llama":
        raise Unsupported(f"model_type {mt!r}: only 'llama' (LlamaForCausalLM) is implemented")
    arch = c.get("architectures") or ["LlamaForCausalLM"]
    if arch != ["LlamaForCausalLM"]:
        raise Unsupported(f"architectures {arch}: only LlamaForCausalLM is implemented")
    if c.get("rope_scaling") not in (None, {}):
        raise Unsupported(f"rope_scaling {c['rope_scaling']!r}: rope scaling (linear, dynamic, yarn, llama3, ...) "
                          "is not implemented; only plain RoPE with rope_theta")
    if c.get("attention_bias", False):
        raise Unsupported("attention_bias=true: q/k/v/o biases are not implemented")
    if c.get("mlp_bias", False):
        raise Unsupported("mlp_bias=true: MLP biases are not implemented")
    if c.get("hidden_act", "silu") != "silu":
        raise Unsupported(f"hidden_act {c['hidden_act']!r}: only 'silu' is implemented")
    if c.get("pretraining_tp", 1) != 1:
        raise Unsupported(f"pretraining_tp {c['pretraining_tp']}: only 1 is implemented")
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        if not isinstance(c.get(k), int) or c[k] < 1:
            raise Unsupported(f"config.{k} missing or invalid: {c.get(k)!r}")
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    if c.get("head_dim") is None:
        if c["hidden_size"] % c["num_attention_heads"]:
            raise Unsupported("hidden_size is not a multiple of num_attention_heads and head_dim is not given")
        c["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    if c["num_attention_heads"] % c["num_key_value_heads"]:
        raise Unsupported("num_attention_heads is not a multiple of num_key_value_heads")
    if c["head_dim"] % 2:
        raise Unsupported("odd head_dim")
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("rms_norm_eps", 1e-6)
    c.setdefault("tie_word_embeddings", False)
    return c


def load_weights(model_dir):
    """All tensors of model.safetensors (or a sharded model.safetensors.index.json) as float32 torch tensors."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        files = [single]
    else:
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if not os.path.exists(index):
            raise Unsupported(f"no model.safetensors or model.safetensors.index.json in {model_dir}")
        files = sorted({os.path.join(model_dir, f) for f in json.load(open(index))["weight_map"].values()})
    out = {}
    for f in files:
        out.update(llama.load_safetensors(f))
    return out


def build_reference(cfg, weights):
    """llama.py's LlamaForCausalLM with the checkpoint's weights, plus the output head weight [vocab, hidden]."""
    model = llama.LlamaForCausalLM(cfg)
    sd = {k: v for k, v in weights.items() if k != "lm_head.weight"}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise Unsupported(f"checkpoint does not match the Llama parameter names: missing {missing}, "
                          f"unexpected {unexpected}")
    if cfg["tie_word_embeddings"]:
        head = model.model.embed_tokens.weight
    else:
        if "lm_head.weight" not in weights:
            raise Unsupported("tie_word_embeddings=false but the checkpoint has no lm_head.weight")
        head = nn.Parameter(weights["lm_head.weight"])
    model.eval()
    return model, head


def reference_logits(model, head, ids):
    """llama.py's forward (full sequence, no cache), with an explicit head weight for untied models."""
    if model.cfg["tie_word_embeddings"] and head is model.model.embed_tokens.weight:
        return model(ids)
    t = ids.shape[1]
    cos, sin = llama.rope_cos_sin(t, model.cfg["head_dim"], model.cfg["rope_theta"])
    mask = torch.full((t, t), float("-inf")).triu(1)
    x = model.model.embed_tokens(ids)
    for layer in model.model.layers:
        x = layer(x, cos, sin, mask)
    return F.linear(model.model.norm(x), head)


# ---------------------------------------------------------------------------------------------- ONNX graph module

class OnnxLlama(nn.Module):
    """The KV-cache forward transformers.js drives, on the modules (and weights) of a llama.py model."""

    def __init__(self, ref, head):
        super().__init__()
        cfg = ref.cfg
        self.cfg = cfg
        self.embed = ref.model.embed_tokens
        self.layers = ref.model.layers
        self.norm = ref.model.norm
        self.head = head
        d = cfg["head_dim"]
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        self.register_buffer("inv_freq", inv, persistent=False)

    def attention(self, attn, x, cos, sin, allowed, past_k, past_v):
        b, t, _ = x.shape
        q = attn.q_proj(x).view(b, t, attn.nh, attn.hd).transpose(1, 2)
        k = attn.k_proj(x).view(b, t, attn.nkv, attn.hd).transpose(1, 2)
        v = attn.v_proj(x).view(b, t, attn.nkv, attn.hd).transpose(1, 2)
        q = q * cos + llama.rotate_half(q) * sin
        k = k * cos + llama.rotate_half(k) * sin
        k = torch.cat([past_k, k], dim=2)       # present: [B, KVH, past + T, D]
        v = torch.cat([past_v, v], dim=2)
        rep = attn.nh // attn.nkv
        kk = llama.repeat_kv(k, rep)
        vv = llama.repeat_kv(v, rep)
        scores = torch.matmul(q, kk.transpose(2, 3)) / math.sqrt(attn.hd)
        scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32)
        out = torch.matmul(probs, vv).transpose(1, 2).reshape(b, t, attn.nh * attn.hd)
        return attn.o_proj(out), k, v

    def forward(self, input_ids, attention_mask, position_ids, *past):
        t = input_ids.shape[1]
        total = attention_mask.shape[1]
        # RoPE from position_ids (transformers.js passes cumsum(attention_mask) - 1, sliced to the new tokens)
        freqs = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq      # [B, T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)                       # [B, 1, T, D]
        cos, sin = emb.cos(), emb.sin()
        # key j is visible to new token i when j <= past + i and attention_mask[b, j] == 1
        q_pos = torch.arange(t, dtype=torch.int64) + (total - t)
        k_pos = torch.arange(total, dtype=torch.int64)
        causal = k_pos.unsqueeze(0) <= q_pos.unsqueeze(1)                          # [T, total]
        allowed = causal.unsqueeze(0).unsqueeze(0) & (attention_mask > 0).unsqueeze(1).unsqueeze(2)
        x = self.embed(input_ids)
        presents = []
        for i, layer in enumerate(self.layers):
            h, k, v = self.attention(layer.self_attn, layer.input_layernorm(x), cos, sin, allowed,
                                     past[2 * i], past[2 * i + 1])
            x = x + h
            x = x + layer.mlp(layer.post_attention_layernorm(x))
            presents += [k, v]
        logits = F.linear(self.norm(x), self.head)
        return (logits, *presents)


def io_names(n_layers):
    inputs = ["input_ids", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for i in range(n_layers):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    axes = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for n in inputs[3:]:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in outputs[1:]:
        axes[n] = {0: "batch_size", 2: "past_sequence_length + sequence_length"}
    return inputs, outputs, axes


def export_fp32(module, cfg, path):
    inputs, outputs, axes = io_names(cfg["num_hidden_layers"])
    b, t, past = 2, 3, 4   # trace with a non-empty past and batch 2 so no size gets baked in
    ids = torch.randint(0, cfg["vocab_size"], (b, t), dtype=torch.int64)
    mask = torch.ones(b, past + t, dtype=torch.int64)
    pos = torch.arange(past, past + t, dtype=torch.int64).unsqueeze(0).expand(b, t).contiguous()
    pkv = [torch.zeros(b, cfg["num_key_value_heads"], past, cfg["head_dim"])
           for _ in range(2 * cfg["num_hidden_layers"])]
    with torch.no_grad():
        torch.onnx.export(module, (ids, mask, pos, *pkv), path, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


# ---------------------------------------------------------------------------------------------- q4 (MatMulNBits)

def _roundf(x):
    """C roundf (halves away from zero) of float32 values, exactly (via float64)."""
    x64 = x.astype(np.float64)
    return (np.sign(x64) * np.floor(np.abs(x64) + 0.5)).astype(np.float32)


def quantize_q4(w, block=BLOCK):
    """w: float32 [N, K] (nn.Linear layout). Returns (B uint8 [N, blocks, block/2], scales float32 [N*blocks],
    zero_points uint8 [N*ceil(blocks/2)], dequantised float32 [N, K]) following the MLAS blockwise rules
    documented in src/kernels/quant.ts (f16-rounded scales, asymmetric uint4 with zero points)."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    n, k = w.shape
    blocks = -(-k // block)
    wp = np.zeros((n, blocks * block), np.float32)
    wp[:, :k] = w
    g = wp.reshape(n, blocks, block)
    lo = np.minimum(np.float32(0), np.nanmin(g, axis=-1))
    hi = np.maximum(np.float32(0), np.nanmax(g, axis=-1))
    s32 = ((hi - lo) / np.float32(15)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        zf = np.where(s32 != 0, -lo / np.where(s32 != 0, s32, np.float32(1)), lo).astype(np.float32)
    z = np.where(zf < 0, np.float32(0), np.where(zf > 15, np.float32(15), _roundf(zf))).astype(np.float32)
    s16 = s32.astype(np.float16)
    s = s16.astype(np.float32)
    with np.errstate(divide="ignore"):
        r = np.where(s != 0, np.float32(1) / np.where(s != 0, s, np.float32(1)), np.float32(0)).astype(np.float32)
    r = np.where(np.isinf(s), np.float32(0), r).astype(np.float32)
    wr = (g * r[..., None]).astype(np.float32)
    q = np.clip(_roundf((wr + z[..., None]).astype(np.float32)), 0, 15).astype(np.uint8)
    pad = np.arange(blocks * block).reshape(blocks, block) >= k          # padding elements quantise to z
    q = np.where(pad[None], z[..., None].astype(np.uint8), q)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)      # [N, blocks, block/2], low nibble first
    zi = z.astype(np.uint8)
    if blocks % 2:
        zi = np.concatenate([zi, np.zeros((n, 1), np.uint8)], axis=1)
    zp = (zi[:, 0::2] | (zi[:, 1::2] << 4)).astype(np.uint8)            # [N, ceil(blocks/2)]
    deq = ((q.astype(np.float32) - z[..., None]) * s[..., None]).reshape(n, blocks * block)[:, :k]
    deq = np.where(np.isinf(s)[..., None].repeat(block, -1).reshape(n, -1)[:, :k], np.float32(0), deq)
    return packed, s.reshape(-1), zp.reshape(-1), deq.astype(np.float32)


def make_q4(fp32_model, path, block=BLOCK):
    """Every MatMul whose B is a 2-D float initializer (all decoder Linears and the lm_head, as in transformers.js'
    q4 files; the embedding Gather stays fp32) becomes com.microsoft::MatMulNBits. Returns the list of
    (initializer name, N, K) quantised."""
    m = onnx.ModelProto()
    m.CopyFrom(fp32_model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    uses = {}
    for node in g.node:
        for x in node.input:
            uses[x] = uses.get(x, 0) + 1
    new_nodes, done, drop = [], [], set()
    for node in g.node:
        b = node.input[1] if node.op_type == "MatMul" else None
        init = inits.get(b) if b else None
        if init is None or len(init.dims) != 2 or init.data_type != TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        wt = numpy_helper.to_array(init)          # [K, N] (x @ W^T exported as MatMul(x, W^T))
        k, n = wt.shape
        packed, scales, zp, _ = quantize_q4(wt.T, block)
        base = node.name or b
        names = [f"{base}.q4.B", f"{base}.q4.scales", f"{base}.q4.zero_points"]
        g.initializer.extend([numpy_helper.from_array(packed, names[0]), numpy_helper.from_array(scales, names[1]),
                              numpy_helper.from_array(zp, names[2])])
        new_nodes.append(helper.make_node("MatMulNBits", [node.input[0], *names], list(node.output),
                                          name=f"{base}_MatMulNBits", domain="com.microsoft",
                                          K=k, N=n, bits=4, block_size=block))
        uses[b] -= 1
        if uses[b] == 0:
            drop.add(b)
        done.append((b, n, k))
    del g.node[:]
    g.node.extend(new_nodes)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep)
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, path)
    return done


def dequantized_reference(ref, head, cfg):
    """A deep copy of the reference model with every Linear (and the head) replaced by its q4-dequantised weight,
    i.e. what MatMulNBits computes with; the embedding table stays fp32."""
    import copy
    q = copy.deepcopy(ref)
    with torch.no_grad():
        for mod in q.modules():
            if isinstance(mod, nn.Linear):
                mod.weight.copy_(torch.from_numpy(quantize_q4(mod.weight.numpy())[3]))
        qhead = nn.Parameter(torch.from_numpy(quantize_q4(head.detach().numpy())[3]))
    q.cfg = dict(q.cfg, tie_word_embeddings=False)   # untied: the head is a separate (quantised) matrix
    return q, qhead


# ---------------------------------------------------------------------------------------------- reference logits

def greedy_reference(model, head, prompt, steps):
    """Prefill logits of the prompt and, for `steps` greedy tokens, the last-position logits of each re-run
    (no KV cache, llama.py's forward). Returns (tokens, logits [len(prompt) + steps - 1, vocab])."""
    ids = list(prompt)
    with torch.no_grad():
        full = reference_logits(model, head, torch.tensor([ids]))[0]
        rows = [full]
        toks = []
        for s in range(steps):
            nxt = int(rows[-1][-1].argmax())
            toks.append(nxt)
            ids.append(nxt)
            if s < steps - 1:
                rows.append(reference_logits(model, head, torch.tensor([ids]))[0][-1:])
    return toks, torch.cat(rows, 0).numpy().astype(np.float32)


def tokenize(model_dir, prompts):
    out = subprocess.run(["node", os.path.join(HERE, "tokenize.mjs"), model_dir, *prompts], check=True,
                         capture_output=True, text=True, cwd=HERE)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--prompt", action="append", help="reference prompt (repeatable); default: two fixed prompts")
    ap.add_argument("--prompt-ids", action="append", help="reference prompt as comma-separated ids (no tokenizer)")
    ap.add_argument("--steps", type=int, default=16, help="greedy decode steps in the reference (default 16)")
    ap.add_argument("--no-q4", action="store_true", help="only write model.onnx")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    t_all = time.time()

    cfg_raw = json.load(open(os.path.join(args.model_dir, "config.json")))
    try:
        cfg = check_config(cfg_raw)
    except Unsupported as e:
        sys.exit(f"export.py: unsupported model: {e}")
    out_onnx = os.path.join(args.out_dir, "onnx")
    os.makedirs(out_onnx, exist_ok=True)
    for f in COPY_FILES:
        src = os.path.join(args.model_dir, f)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(args.out_dir, f))
        elif f in ("config.json", "tokenizer.json"):
            sys.exit(f"export.py: {src} is missing")

    try:
        ref, head = build_reference(cfg, load_weights(args.model_dir))
    except Unsupported as e:
        sys.exit(f"export.py: unsupported checkpoint: {e}")
    module = OnnxLlama(ref, head).eval()

    timings = {}
    t0 = time.time()
    fp32 = export_fp32(module, cfg, os.path.join(out_onnx, "model.onnx"))
    timings["export_fp32_s"] = round(time.time() - t0, 2)
    quantized = []
    if not args.no_q4:
        t0 = time.time()
        quantized = make_q4(fp32, os.path.join(out_onnx, "model_q4.onnx"))
        timings["quantize_q4_s"] = round(time.time() - t0, 2)

    # reference logits
    t0 = time.time()
    if args.prompt_ids:
        prompts = [None] * len(args.prompt_ids)
        ids = [[int(x) for x in p.split(",")] for p in args.prompt_ids]
    else:
        prompts = args.prompt or DEFAULT_PROMPTS
        ids = tokenize(os.path.abspath(args.model_dir), prompts)
    refdir = os.path.join(args.out_dir, "reference")
    os.makedirs(refdir, exist_ok=True)
    variants = [("fp32", ref, head)]
    if not args.no_q4:
        variants.append(("q4", *dequantized_reference(ref, head, cfg)))
    meta = {"vocab_size": cfg["vocab_size"], "num_hidden_layers": cfg["num_hidden_layers"],
            "num_key_value_heads": cfg["num_key_value_heads"], "head_dim": cfg["head_dim"],
            "steps": args.steps, "prompts": []}
    for pi, (text, p) in enumerate(zip(prompts, ids)):
        entry = {"text": text, "ids": p}
        for name, mdl, hd in variants:
            toks, logits = greedy_reference(mdl, hd, p, args.steps)
            fn = f"prompt{pi}_{name}.f32"
            logits.tofile(os.path.join(refdir, fn))
            entry[name] = {"tokens": toks, "logits_file": fn, "rows": logits.shape[0]}
        meta["prompts"].append(entry)
    timings["reference_s"] = round(time.time() - t0, 2)
    json.dump(meta, open(os.path.join(refdir, "reference.json"), "w"), indent=1)

    sizes = {f: os.path.getsize(os.path.join(out_onnx, f)) for f in sorted(os.listdir(out_onnx))}
    timings["total_s"] = round(time.time() - t_all, 2)
    report = {"sizes_bytes": sizes, "timings": timings, "q4_matmuls": len(quantized),
              "q4_weights": [{"init": b, "N": n, "K": k} for b, n, k in quantized]}
    json.dump(report, open(os.path.join(refdir, "export_report.json"), "w"), indent=1)
    print(json.dumps({"sizes_bytes": sizes, "timings": timings, "q4_matmuls": len(quantized)}, indent=1))
    for e in meta["prompts"]:
        print("prompt", e["ids"], "greedy fp32", e["fp32"]["tokens"],
              "q4" if "q4" in e else "", e.get("q4", {}).get("tokens", ""))


if __name__ == "__main__":
    main()
