"""Make small pre-quantized 4-bit checkpoints (AWQ GEMM, GPTQ v1, GPTQ v2) of the demo
model, for testing the runtime's loaders of those formats.

    /usr/bin/python3 tools/make-prequantized/make.py [--model DIR] [--out DIR]

The quantization itself is plain round-to-nearest min/max (no AWQ scale search, no GPTQ
Hessian updates): those only change *which* integers get stored, not *how*. What must
match the real tools bit for bit is the on-disk layout, so each pack function below is
a transcription of the published code (see README.md for the file/function names):

  AWQ  : AutoAWQ awq/modules/linear/gemm.py  WQLinear_GEMM.from_linear
  GPTQ : AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py  QuantLinear.pack
         (v1: zeros stored minus one); GPTQModel v2 = v1 qzeros + 0x11111111
         (gptqmodel/utils/model.py convert_gptq_v1_to_v2_format_module), i.e. zeros as is.

The reference logits are computed from weights recovered by separate unpack functions
(transcriptions of AutoAWQ's unpack_awq/reverse_awq_order/dequantize_gemm and of
AutoGPTQ's shift-and-mask dequant in QuantLinear.forward) applied to the int32 tensors
read back from the written safetensors file, so a packing bug cannot cancel itself out.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train-demo-model"))
import llama  # noqa: E402  (plain PyTorch Llama with transformers' parameter names)

torch.set_num_threads(1)  # the machine this runs on shares its other core

BITS = 4
PACK = 32 // BITS  # 8 nibbles per int32
MAXQ = 2 ** BITS - 1

# Token ids of the two prompts, from the model's own tokenizer with add_special_tokens
# (so <s> = 1 first):
#   node -e "const {Tokenizer}=require('@anush008/tokenizers');(async()=>{const t=Tokenizer.fromFile(
#     'models/kjv-llama-tiny/tokenizer.json');console.log((await t.encode('In the beginning God created')).getIds())})()"
PROMPTS = [
    ("In the beginning God created", [1, 1133, 261, 2084, 389, 3358]),
    ("And the LORD said unto Moses,", [1, 298, 261, 344, 390, 323, 692, 14]),
]
GREEDY_STEPS = 16

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

VARIANTS = [
    # name, method, group_size, sym, gptq checkpoint_format
    ("awq-g64", "awq", 64, False, None),
    ("gptq-sym-g128", "gptq", 128, True, "gptq"),
    ("gptq-asym-g32-v2", "gptq", 32, False, "gptq_v2"),
]


# ---------------------------------------------------------------- safetensors (F16/I32/BF16/F32)

def save_safetensors(path, tensors):
    """tensors: name -> numpy array of float16 / int32 / float32 (llama.py's save_safetensors takes floats only)."""
    kinds = {np.dtype(np.float16): ("F16", "<f2"), np.dtype(np.int32): ("I32", "<i4"), np.dtype(np.float32): ("F32", "<f4")}
    entries = {}
    for name, a in tensors.items():
        dtype, np_dtype = kinds[a.dtype]
        entries[name] = (dtype, a.shape, np.ascontiguousarray(a).astype(np_dtype).tobytes())
    llama.write_safetensors(path, entries)


# ---------------------------------------------------------------- quantization (RTN, per the tools' math)

def groups_of(K, G):
    return [(s, min(s + G, K)) for s in range(0, K, G)]


def quantize_awq(W, G):
    """AutoAWQ AwqQuantizer.pseudo_quantize_tensor (zero_point=True): min/max over the group
    with NO clamp of min<=0<=max, scale=(max-min).clamp(1e-5)/15, zero=-round(min/scale)
    clamped to [0,15]. AutoAWQ does this in fp16, so the zero and q use the f16 scale.
    W: [N, K] float32. Returns q [N, K] int, zeros [N, ngroups] int, scales16 [N, ngroups] f16."""
    N, K = W.shape
    assert K % G == 0, "AutoAWQ asserts in_features % group_size == 0"
    Wg = W.reshape(N, K // G, G)
    mx, mn = Wg.amax(-1), Wg.amin(-1)
    s16 = ((mx - mn).clamp(min=1e-5) / MAXQ).half()
    s = s16.float()
    z = (-torch.round(mn / s)).clamp(0, MAXQ)
    q = torch.clamp(torch.round(Wg / s[..., None]) + z[..., None], 0, MAXQ)
    return q.reshape(N, K).to(torch.int32), z.to(torch.int32), s16


def quantize_gptq(W, G, sym):
    """AutoGPTQ Quantizer.find_params (perchannel, per group) + quantize(): xmin/xmax are
    clamped to include 0; sym uses xmax=max(|xmin|,xmax), xmin=-xmax (only if xmin<0) and
    zero=(maxq+1)/2=8; asym zero=round(-xmin/scale) (computed from the f32 scale, as GPTQ
    does). q is computed from the f16-rounded scale that gets stored. K % G may be non-zero
    (the last group is then partial, ceil(K/G) groups)."""
    N, K = W.shape
    qs, zs, ss = [], [], []
    for a, b in groups_of(K, G):
        x = W[:, a:b]
        tmp = torch.zeros(N)
        xmin = torch.minimum(x.amin(1), tmp)
        xmax = torch.maximum(x.amax(1), tmp)
        if sym:
            xmax = torch.maximum(xmin.abs(), xmax)
            neg = xmin < 0
            xmin[neg] = -xmax[neg]
        both0 = (xmin == 0) & (xmax == 0)
        xmin[both0] = -1
        xmax[both0] = 1
        scale = (xmax - xmin) / MAXQ
        zero = torch.full_like(scale, (MAXQ + 1) / 2) if sym else torch.round(-xmin / scale)
        s16 = scale.half()
        q = torch.clamp(torch.round(x / s16.float()[:, None]) + zero[:, None], 0, MAXQ)
        qs.append(q)
        zs.append(zero)
        ss.append(s16)
    q = torch.cat(qs, 1).to(torch.int32)
    return q, torch.stack(zs, 1).to(torch.int32), torch.stack(ss, 1)


# ---------------------------------------------------------------- packing (transcribed from the tools)

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]          # awq/utils/packing_utils.py
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def pack_awq(q, zeros, s16):
    """WQLinear_GEMM.from_linear: intweight is [K, N] (transposed); qweight[:, col] |=
    intweight[:, col*8 + order_map[i]] << (i*4); qzeros the same on zeros [K/G, N] (no
    offset); scales [K/G, N] f16."""
    iw = q.t().contiguous().numpy().astype(np.uint32)       # [K, N]
    iz = zeros.t().contiguous().numpy().astype(np.uint32)   # [K/G, N]
    qweight = np.zeros((iw.shape[0], iw.shape[1] // PACK), np.uint32)
    qzeros = np.zeros((iz.shape[0], iz.shape[1] // PACK), np.uint32)
    for col in range(iw.shape[1] // PACK):
        for i in range(PACK):
            qweight[:, col] |= iw[:, col * PACK + AWQ_ORDER[i]] << np.uint32(i * BITS)
            qzeros[:, col] |= iz[:, col * PACK + AWQ_ORDER[i]] << np.uint32(i * BITS)
    return {"qweight": qweight.view(np.int32), "qzeros": qzeros.view(np.int32),
            "scales": s16.t().contiguous().numpy()}


def pack_gptq(q, zeros, s16, G, fmt):
    """QuantLinear.pack: intweight [K, N]; qweight[row] |= intweight[j] << (4*(j-i)) for the
    8 consecutive input rows i..i+7 (so qweight is [K/8, N]); v1 does `zeros -= 1` before
    packing 8 consecutive output columns per int32 of qzeros [ceil(K/G), N/8]; v2 (GPTQModel)
    stores zeros as is. g_idx[k] = k // G."""
    K = q.shape[1]
    assert K % PACK == 0
    iw = q.t().contiguous().numpy().astype(np.uint32)                  # [K, N]
    z = zeros.t().contiguous().numpy().astype(np.int64)                # [ngroups, N]
    if fmt == "gptq":
        # v1 stores z-1; z=0 would become -1 -> 0xFFFFFFFF when cast to uint32 and smear
        # over the neighbouring nibbles in the real code. Refuse rather than reproduce it.
        assert (z >= 1).all(), "gptq v1 cannot store zero point 0"
        z = z - 1
    z = z.astype(np.uint32)
    qweight = np.zeros((K // PACK, iw.shape[1]), np.uint32)
    for row in range(K // PACK):
        for j in range(PACK):
            qweight[row] |= iw[row * PACK + j] << np.uint32(BITS * j)
    qzeros = np.zeros((z.shape[0], z.shape[1] // PACK), np.uint32)
    for col in range(z.shape[1] // PACK):
        for j in range(PACK):
            qzeros[:, col] |= z[:, col * PACK + j] << np.uint32(BITS * j)
    return {"qweight": qweight.view(np.int32), "qzeros": qzeros.view(np.int32),
            "scales": s16.t().contiguous().numpy(),
            "g_idx": np.array([k // G for k in range(K)], dtype=np.int32)}


# ---------------------------------------------------------------- unpacking (independent, from the readers)

def unpack_awq(t, G):
    """AutoAWQ unpack_awq + reverse_awq_order + the `& 15` overflow check of dequantize_gemm.
    Returns iweight [K, N], izeros [K/G, N] (ints) and W [N, K] float32 = ((iw - iz) * s).T,
    with the product taken in f32 (exact for an f16 scale times a 5-bit integer)."""
    qweight, qzeros = torch.from_numpy(t["qweight"]), torch.from_numpy(t["qzeros"])
    shifts = torch.arange(0, 32, BITS, dtype=torch.int32)
    iw = torch.bitwise_right_shift(qweight[:, :, None], shifts[None, None, :]).to(torch.int8)
    iw = iw.view(iw.shape[0], -1)
    iz = torch.bitwise_right_shift(qzeros[:, :, None], shifts[None, None, :]).to(torch.int8)
    iz = iz.view(iz.shape[0], -1)
    order = torch.arange(iz.shape[-1], dtype=torch.int64).view(-1, PACK)[:, AWQ_REVERSE_ORDER].view(-1)
    iw, iz = iw[:, order], iz[:, order]
    iw = torch.bitwise_and(iw, MAXQ).to(torch.int32)
    iz = torch.bitwise_and(iz, MAXQ).to(torch.int32)
    scales = torch.from_numpy(t["scales"].astype(np.float32))
    W = (iw - iz.repeat_interleave(G, dim=0)).float() * scales.repeat_interleave(G, dim=0)
    return iw, iz, W.t().contiguous()


def unpack_gptq(t, fmt):
    """AutoGPTQ QuantLinear.forward's torch path: shift by wf=[0,4,..,28] and mask; zeros + 1
    for v1 (not for v2); then scales[g_idx] * (weight - zeros[g_idx]) so partial last
    groups work. Returns iweight [K, N], izeros [ngroups, N] (true zero points), W [N, K]."""
    qweight, qzeros = torch.from_numpy(t["qweight"]), torch.from_numpy(t["qzeros"])
    g_idx = torch.from_numpy(t["g_idx"]).long()
    wf = torch.tensor(list(range(0, 32, BITS)), dtype=torch.int32).unsqueeze(0)
    zeros = torch.bitwise_right_shift(torch.unsqueeze(qzeros, 2).expand(-1, -1, PACK), wf.unsqueeze(0)).to(torch.int8)
    zeros = torch.bitwise_and(zeros, MAXQ).to(torch.int32)
    if fmt == "gptq":
        zeros = zeros + 1
    zeros = zeros.reshape(zeros.shape[0], -1)                               # [ngroups, N]
    weight = torch.bitwise_right_shift(torch.unsqueeze(qweight, 1).expand(-1, PACK, -1), wf.unsqueeze(-1)).to(torch.int8)
    weight = torch.bitwise_and(weight, MAXQ).to(torch.int32)
    weight = weight.reshape(weight.shape[0] * PACK, weight.shape[2])        # [K, N]
    scales = torch.from_numpy(t["scales"].astype(np.float32))
    W = scales[g_idx] * (weight - zeros[g_idx]).float()
    return weight, zeros, W.t().contiguous()


# ---------------------------------------------------------------- reference forward

@torch.no_grad()
def reference(cfg, sd):
    model = llama.LlamaForCausalLM(cfg)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.eval()
    prompts, logits_all, greedy, off = [], [], [], 0
    for _, ids in PROMPTS:
        lg = model(torch.tensor([ids]))[0].float()          # [T, V]
        prompts.append({"input_ids": ids, "logits_offset": off})
        logits_all.append(lg.numpy().astype("<f4"))
        off += lg.numel()
        seq, new, margins = list(ids), [], []
        for _ in range(GREEDY_STEPS):
            last = model(torch.tensor([seq]))[0, -1].float()
            top = torch.topk(last, 2)
            margins.append(float(top.values[0] - top.values[1]))
            nxt = int(top.indices[0])
            new.append(nxt)
            seq.append(nxt)
        greedy.append({"input_ids": ids, "new_tokens": new, "top2_margins": margins})
    return prompts, np.concatenate([a.reshape(-1) for a in logits_all]), greedy


# ---------------------------------------------------------------- configs as the tools write them

def quantization_config(method, G, sym, fmt):
    if method == "awq":
        # AutoAWQ awq/models/_config.py AwqConfig.to_transformers_dict
        return {"quant_method": "awq", "zero_point": True, "group_size": G, "bits": BITS,
                "version": "gemm", "modules_to_not_convert": None}
    if fmt == "gptq":
        # AutoGPTQ auto_gptq/quantization/config.py BaseQuantizeConfig.to_dict (0.7.x);
        # save_quantized puts it in config.json before setting model_name_or_path.
        return {"bits": BITS, "group_size": G, "damp_percent": 0.01, "desc_act": False,
                "static_groups": False, "sym": sym, "true_sequential": True,
                "model_name_or_path": None, "model_file_base_name": None,
                "quant_method": "gptq", "checkpoint_format": "gptq"}
    # GPTQModel gptqmodel/quantization/config.py QuantizeConfig.to_dict (1.x/2.x): None
    # values (dynamic) are dropped; tool settings that do not affect inference go in meta.
    return {"bits": BITS, "group_size": G, "desc_act": False, "sym": sym, "lm_head": False,
            "quant_method": "gptq", "checkpoint_format": "gptq_v2", "pack_dtype": "int32",
            "meta": {"quantizer": ["webslm-make-prequantized:0.1"],
                     "uri": "https://github.com/modelcloud/gptqmodel",
                     "damp_percent": 0.01, "damp_auto_increment": 0.0025,
                     "static_groups": False, "true_sequential": True, "mse": 0.0}}


def write_json(path, obj):
    # transformers' PretrainedConfig.to_json_string: indent 2, sorted keys, trailing newline
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/kjv-llama-tiny")
    ap.add_argument("--out", default="tests/fixtures/prequantized")
    args = ap.parse_args()

    cfg = json.load(open(os.path.join(args.model, "config.json")))
    orig = llama.load_safetensors(os.path.join(args.model, "model.safetensors"))  # f32 (exact bf16 values)
    assert "lm_head.weight" not in orig and cfg["tie_word_embeddings"]
    lin_names = [f"model.layers.{L}.{m}" for L in range(cfg["num_hidden_layers"]) for m in LINEARS]

    for name, method, G, sym, fmt in VARIANTS:
        out_dir = os.path.join(args.out, name)
        os.makedirs(out_dir, exist_ok=True)
        tensors, prepack = {}, {}
        # everything that is not a quantized linear is stored as f16, like the tools'
        # fp16 models (embed_tokens, the norms)
        for k, v in orig.items():
            if k.rsplit(".", 1)[0] not in lin_names:
                tensors[k] = v.numpy().astype(np.float16)
        for ln in lin_names:
            W = orig[ln + ".weight"]
            if method == "awq":
                q, z, s16 = quantize_awq(W, G)
                packed = pack_awq(q, z, s16)
            else:
                q, z, s16 = quantize_gptq(W, G, sym)
                packed = pack_gptq(q, z, s16, G, fmt)
            prepack[ln] = (q, z)
            for k, v in packed.items():
                tensors[f"{ln}.{k}"] = v
        st_path = os.path.join(out_dir, "model.safetensors")
        save_safetensors(st_path, tensors)

        # read back and dequantize independently
        back = llama.read_safetensors_arrays(st_path)
        sd, max_err, sum_err, n_err, z0, zmax, nz = {}, 0.0, 0.0, 0, 0, 0, 0
        for k, v in back.items():
            if k.rsplit(".", 1)[0] not in lin_names:
                sd[k] = torch.from_numpy(v.astype(np.float32))
        for ln in lin_names:
            t = {k: back[f"{ln}.{k}"] for k in ("qweight", "qzeros", "scales", "g_idx") if f"{ln}.{k}" in back}
            if method == "awq":
                iw, iz, Wd = unpack_awq(t, G)
            else:
                iw, iz, Wd = unpack_gptq(t, fmt)
            q, z = prepack[ln]
            assert torch.equal(iw, q.t()), f"{name} {ln}: unpacked weights differ"
            assert torch.equal(iz, z.t()), f"{name} {ln}: unpacked zeros differ"
            z0 += int((z == 0).sum())
            zmax += int((z == MAXQ).sum())
            nz += z.numel()
            sd[ln + ".weight"] = Wd
            # error in units of the group's scale: <= 0.5 unless a value was clamped
            W = orig[ln + ".weight"]
            gi = torch.from_numpy(np.array([k // G for k in range(W.shape[1])]))
            s = torch.from_numpy(t["scales"].astype(np.float32)).t()[:, gi]   # [N, K]
            e = ((Wd - W).abs() / s)
            max_err = max(max_err, float(e.max()))
            sum_err += float(e.sum())
            n_err += e.numel()

        prompts, logits, greedy = reference(cfg, sd)
        logits.tofile(os.path.join(out_dir, "reference-logits.bin"))
        qc = quantization_config(method, G, sym, fmt)
        notes = (f"{name}: round-to-nearest min/max 4-bit quantization of {args.model} "
                 f"(method {method}, group_size {G}, sym {sym}"
                 + (f", checkpoint_format {fmt}" if fmt else "") + "). "
                 "Logits from tools/train-demo-model/llama.py in float32 on weights dequantized "
                 "from the written int32 tensors as (q - z) * scale with the f16 scale widened "
                 "to f32 (no f16 rounding of the product); embed_tokens/norms are the stored f16 "
                 "values. reference-logits.bin: float32 LE, [T_i, vocab] per prompt, "
                 "logits_offset in floats. greedy: argmax, re-running the full prefix each step.")
        write_json(os.path.join(out_dir, "reference.json"),
                   {"prompts": prompts, "vocab_size": cfg["vocab_size"], "greedy": greedy, "notes": notes})
        qcfg = dict(cfg)
        qcfg["torch_dtype"] = "float16"
        qcfg["quantization_config"] = qc
        write_json(os.path.join(out_dir, "config.json"), qcfg)
        if method == "gptq":
            # AutoGPTQ and GPTQModel also write quantize_config.json (same dict; AutoGPTQ
            # fills in model_name_or_path/model_file_base_name after saving config.json)
            qj = dict(qc)
            if fmt == "gptq":
                qj["model_name_or_path"], qj["model_file_base_name"] = out_dir, "model"
            with open(os.path.join(out_dir, "quantize_config.json"), "w", encoding="utf-8") as f:
                json.dump(qj, f, indent=2)
        shutil.copy(os.path.join(args.model, "generation_config.json"), out_dir)

        print(f"{name}: max|w_dq - w|/scale = {max_err:.4f}, mean = {sum_err / n_err:.4f}; "
              f"zero points: {z0}/{nz} are 0, {zmax}/{nz} are 15")
        for g in greedy:
            print(f"  greedy {g['new_tokens']}  min top2 margin {min(g['top2_margins']):.4f}")
        for fn in sorted(os.listdir(out_dir)):
            print(f"  {fn:24s} {os.path.getsize(os.path.join(out_dir, fn)):>9d} bytes")


if __name__ == "__main__":
    main()
