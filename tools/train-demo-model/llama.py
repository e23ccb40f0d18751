"""A plain LlamaForCausalLM forward, with the same math and parameter names as
Hugging Face transformers' modeling_llama.py (v4.47), plus a tiny safetensors
reader/writer built on numpy.

Only what this demo model uses is implemented: no rope scaling, no attention or
MLP biases, tied input/output embeddings, no KV cache (generation just re-runs
the prefix; the model and contexts are tiny).
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(dtype)


def rope_cos_sin(seq_len, head_dim, theta, device=None):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    pos = torch.arange(seq_len, dtype=torch.float32)
    freqs = pos[:, None] * inv_freq[None, :]          # [T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)           # [T, D]
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    # [B, KVH, T, D] -> [B, KVH * n_rep, T, D]
    if n_rep == 1:
        return x
    b, kvh, t, d = x.shape
    return x[:, :, None, :, :].expand(b, kvh, n_rep, t, d).reshape(b, kvh * n_rep, t, d)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, self.nh, self.nkv, self.hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.q_proj = nn.Linear(h, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, self.nh // self.nkv)
        v = repeat_kv(v, self.nh // self.nkv)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd) + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, self.nh * self.hd)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    """state_dict keys: model.embed_tokens.weight, model.layers.N.*, model.norm.weight.
    lm_head is tied to model.embed_tokens (tie_word_embeddings=true), so it has no weight of its own."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)

    def init_weights(self, std=0.02):
        # transformers' LlamaPreTrainedModel._init_weights: normal(0, initializer_range) for Linear/Embedding
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=std)

    def forward(self, ids):
        t = ids.shape[1]
        cos, sin = rope_cos_sin(t, self.cfg["head_dim"], self.cfg["rope_theta"])
        mask = torch.full((t, t), float("-inf")).triu(1)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        return F.linear(x, self.model.embed_tokens.weight)  # tied lm_head


# ---------------------------------------------------------------- safetensors

_NP_DTYPES = {"F16": "<f2", "F32": "<f4", "I32": "<i4"}


def write_safetensors(path, entries):
    """entries: dict name -> (safetensors dtype, shape, raw little-endian bytes); written sorted by name."""
    header, blobs, off = {}, [], 0
    for name in sorted(entries):
        dtype, shape, raw = entries[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def save_safetensors(path, tensors, dtype="BF16"):
    """tensors: dict name -> float torch tensor. Stored as BF16 (or F16)."""
    entries = {}
    for name, tensor in tensors.items():
        t = tensor.detach().float().contiguous()
        if dtype == "BF16":
            # round-to-nearest-even f32 -> bf16 (torch does this in .to(bfloat16))
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        elif dtype == "F16":
            raw = t.to(torch.float16).numpy().astype("<f2").tobytes()
        else:
            raise ValueError(dtype)
        entries[name] = (dtype, t.shape, raw)
    write_safetensors(path, entries)


def read_safetensors_arrays(path):
    """Returns dict name -> numpy array in its stored dtype (F16, F32, I32; BF16 widened exactly to float32)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = data[base + a: base + b]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _NP_DTYPES:
            arr = np.frombuffer(buf, dtype=_NP_DTYPES[info["dtype"]])
        else:
            raise ValueError(info["dtype"])
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def load_safetensors(path):
    """Returns dict name -> float32 torch tensor (BF16/F16/F32 upcast to f32)."""
    return {name: torch.from_numpy(a.astype(np.float32)) for name, a in read_safetensors_arrays(path).items()
            if a.dtype != np.int32}


# ---------------------------------------------------------------- byte-level decode

def bytes_to_unicode():
    """GPT-2 / HF ByteLevel byte -> printable unicode char table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class ByteLevelDecoder:
    """Decodes ids with a tokenizer.json's vocab (ByteLevel decoder, special tokens skipped)."""

    def __init__(self, tokenizer_json_path):
        tok = json.load(open(tokenizer_json_path, encoding="utf-8"))
        self.id_to_tok = {i: s for s, i in tok["model"]["vocab"].items()}
        self.special = {t["id"] for t in tok["added_tokens"] if t["special"]}
        self.byte_of = {c: b for b, c in bytes_to_unicode().items()}

    def decode(self, ids):
        s = "".join(self.id_to_tok[i] for i in ids if i not in self.special)
        return bytes(self.byte_of[c] for c in s).decode("utf-8", errors="replace")
