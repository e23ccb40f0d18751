"""Exports the trained model as a Hugging Face model folder, checks it, evaluates it and samples.

    python3 export.py <train dir> <data dir> <tokenizer.json> <model dir>

 1. model.safetensors (BF16, written with numpy by llama.save_safetensors), config.json,
    generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json.
 2. Export check: model.safetensors is read back (llama.load_safetensors, upcast to f32) and its
    logits on a prompt are compared with the in-memory f32 training model (differences come from
    bf16 rounding only) and with the training model rounded to bf16 (must be identical).
 3. eval/heldout.txt and eval/pytorch.json: NLL / perplexity of the EXPORTED weights (f32 math) on
    the held-out passage, with the window rule of eval/README.md.
 4. Validation loss of the exported weights on the whole validation split (same windows as train.py).
 5. Greedy and sampled continuations of a few prompts -> <train dir>/samples.json (for the card).
"""
import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F

from llama import ByteLevelDecoder, LlamaForCausalLM, load_safetensors, save_safetensors
from train import CONFIG, HP, load_bin

train_dir, data_dir, tok_path, model_dir = sys.argv[1:5]
os.makedirs(os.path.join(model_dir, "eval"), exist_ok=True)
torch.set_num_threads(1)
BOS, EOS, UNK = 1, 2, 0
CTX = CONFIG["max_position_embeddings"]

# ------------------------------------------------------------------ 1. files
ckpt = os.path.join(train_dir, "model_f32.pt")
if os.path.exists(ckpt):
    state, trained_steps = torch.load(ckpt), None
else:  # run cut short: fall back to the last periodic checkpoint
    c = torch.load(os.path.join(train_dir, "checkpoint.pt"))
    state, trained_steps = c["model"], c["step"]
    print(f"WARNING: no final weights, exporting checkpoint at step {trained_steps}")
ref = LlamaForCausalLM(CONFIG)
ref.load_state_dict(state)
ref.eval()
save_safetensors(os.path.join(model_dir, "model.safetensors"), ref.state_dict(), "BF16")

config = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": CONFIG["vocab_size"],
    "hidden_size": CONFIG["hidden_size"],
    "intermediate_size": CONFIG["intermediate_size"],
    "num_hidden_layers": CONFIG["num_hidden_layers"],
    "num_attention_heads": CONFIG["num_attention_heads"],
    "num_key_value_heads": CONFIG["num_key_value_heads"],
    "head_dim": CONFIG["head_dim"],
    "max_position_embeddings": CTX,
    "rms_norm_eps": CONFIG["rms_norm_eps"],
    "rope_theta": CONFIG["rope_theta"],
    "rope_scaling": None,
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "pretraining_tp": 1,
    "initializer_range": HP["init_std"],
    "tie_word_embeddings": True,
    "bos_token_id": BOS,
    "eos_token_id": EOS,
    "use_cache": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.47.1",
}
SAMPLING = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.1}
GEN = {"do_sample": True, **SAMPLING}
generation_config = {"bos_token_id": BOS, "eos_token_id": EOS, **GEN, "max_length": CTX,
                     "transformers_version": "4.47.1"}
special_map = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
tok_config = {
    "add_bos_token": True,
    "add_eos_token": False,
    "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                      "single_word": False, "special": True}
                             for i, t in enumerate(["<unk>", "<s>", "</s>"])},
    **special_map,
    "clean_up_tokenization_spaces": False,
    "model_max_length": CTX,
    "tokenizer_class": "PreTrainedTokenizerFast",
}
for name, obj in (("config.json", config), ("generation_config.json", generation_config),
                  ("tokenizer_config.json", tok_config), ("special_tokens_map.json", special_map)):
    with open(os.path.join(model_dir, name), "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
shutil.copyfile(tok_path, os.path.join(model_dir, "tokenizer.json"))

# ------------------------------------------------------------------ 2. export check
exported = LlamaForCausalLM(CONFIG)
loaded = load_safetensors(os.path.join(model_dir, "model.safetensors"))
assert set(loaded) == set(ref.state_dict()), "parameter names differ"
exported.load_state_dict(loaded)
exported.eval()
rounded = LlamaForCausalLM(CONFIG)
rounded.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in ref.state_dict().items()})
rounded.eval()
prompts = json.load(open(os.path.join(data_dir, "prompts.json")))
check_ids = torch.tensor([prompts[1]["ids"]])
with torch.no_grad():
    l_ref, l_exp, l_rnd = ref(check_ids), exported(check_ids), rounded(check_ids)
export_check = {
    "prompt_ids": prompts[1]["ids"],
    "max_abs_diff_vs_f32_training_model": (l_exp - l_ref).abs().max().item(),
    "max_abs_logit_f32": l_ref.abs().max().item(),
    "argmax_agreement_vs_f32": (l_exp.argmax(-1) == l_ref.argmax(-1)).float().mean().item(),
    "max_abs_diff_vs_bf16_rounded_training_model": (l_exp - l_rnd).abs().max().item(),
}
assert export_check["max_abs_diff_vs_bf16_rounded_training_model"] == 0.0
print("export check:", export_check)

# ------------------------------------------------------------------ 3. held-out eval
shutil.copyfile(os.path.join(data_dir, "heldout.txt"), os.path.join(model_dir, "eval", "heldout.txt"))
ids = json.load(open(os.path.join(data_dir, "heldout_ids.json")))
assert ids[0] == BOS
nll_sum, n_pred, windows = 0.0, 0, []
with torch.no_grad():
    for start in range(0, len(ids), CTX):
        w = ids[start:start + CTX]
        if len(w) < 2:
            continue
        x = torch.tensor([w])
        logits = exported(x[:, :-1]).float()
        s = F.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
        windows.append({"start": start, "tokens": len(w), "predicted": len(w) - 1, "nll_sum": s})
        nll_sum += s
        n_pred += len(w) - 1
    first = exported(torch.tensor([ids[:CTX]]))[0]
mean_nll = nll_sum / n_pred
heldout = {
    "weights": "model.safetensors (bf16) upcast to float32; all math in float32",
    "text": "eval/heldout.txt",
    "tokenization": "tokenizer.json, add_special_tokens=true (so ids[0] = <s> = 1)",
    "num_tokens": len(ids),
    "window_rule": f"non-overlapping windows ids[k*{CTX}:(k+1)*{CTX}], k = 0,1,...; each window is run on its own "
                   f"(positions 0..len-1, no cache carried over); window tokens 1..len-1 are predicted from the "
                   f"tokens before them in the same window; only window 0 starts with <s>",
    "num_windows": len(windows),
    "num_predicted_tokens": n_pred,
    "nll_sum": nll_sum,
    "mean_nll": mean_nll,
    "perplexity": math.exp(mean_nll),
    "windows": windows,
    "first_window_position0_top5": [[int(i), float(v)] for v, i in zip(*first[0].topk(5))],
    "first_window_position0_logits_head": [float(v) for v in first[0, :8]],
}
json.dump(heldout, open(os.path.join(model_dir, "eval", "pytorch.json"), "w"), indent=1)
print(f"heldout: {len(ids)} tokens, {len(windows)} windows, mean NLL {mean_nll:.4f}, ppl {math.exp(mean_nll):.3f}")

# ------------------------------------------------------------------ 4. full validation loss
val = load_bin(os.path.join(data_dir, "val.bin"))
nv = (len(val) - 1) // (HP["context"] + 1)
vw = val[: nv * (HP["context"] + 1)].view(nv, HP["context"] + 1)
tot = 0.0
with torch.no_grad():
    for i in range(0, nv, 16):
        w = vw[i:i + 16]
        lg = exported(w[:, :-1])
        tot += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
val_loss_bf16 = tot / (nv * HP["context"])
print(f"validation loss (exported bf16 weights): {val_loss_bf16:.4f}, ppl {math.exp(val_loss_bf16):.2f}")

# ------------------------------------------------------------------ 5. samples
dec = ByteLevelDecoder(tok_path)


def generate(model, prompt_ids, max_new=60, greedy=True, temperature=1.0, top_k=0, top_p=1.0,
             repetition_penalty=1.0, seed=0):
    """Same processing order as transformers: repetition penalty, temperature, top-k, top-p."""
    g = torch.Generator().manual_seed(seed)
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(torch.tensor([ids[-CTX:]]))[0, -1].clone()
            if repetition_penalty != 1.0:
                seen = torch.tensor(sorted(set(ids)))
                s = logits[seen]
                logits[seen] = torch.where(s < 0, s * repetition_penalty, s / repetition_penalty)
            if greedy:
                nxt = int(logits.argmax())
            else:
                logits = logits / temperature
                if top_k:
                    kth = logits.topk(top_k).values[-1]
                    logits[logits < kth] = float("-inf")
                if top_p < 1.0:
                    sl, si = logits.sort(descending=True)
                    cum = sl.softmax(-1).cumsum(-1)
                    remove = cum - sl.softmax(-1) >= top_p  # keep the smallest set with mass >= top_p (as HF)
                    logits[si[remove]] = float("-inf")
                nxt = int(torch.multinomial(logits.softmax(-1), 1, generator=g))
            ids.append(nxt)
            if nxt == EOS:
                break
    return ids[len(prompt_ids):]


samples = {"generation_config": GEN, "export_check": export_check, "val_loss_bf16": val_loss_bf16,
           "trained_steps_if_cut_short": trained_steps, "greedy": [], "sampled": [], "settings_compare": []}
for p in prompts:
    out = generate(exported, p["ids"], greedy=True)
    samples["greedy"].append({"prompt": p["prompt"], "ids": out, "text": dec.decode(out)})
    for seed in (1, 2):
        out = generate(exported, p["ids"], greedy=False, seed=seed, **SAMPLING)
        samples["sampled"].append({"prompt": p["prompt"], "seed": seed, "ids": out, "text": dec.decode(out)})
# a small comparison of sampling settings on one prompt, to pick the defaults
for name, kw in (("t1.0", dict(temperature=1.0)), ("t0.8_k40_p0.95", dict(temperature=0.8, top_k=40, top_p=0.95)),
                 ("t0.8_k40_p0.95_rp1.1", SAMPLING), ("t0.6_k40_rp1.1", dict(temperature=0.6, top_k=40, repetition_penalty=1.1)),
                 ("t0.8_rp1.3", dict(temperature=0.8, top_k=40, repetition_penalty=1.3))):
    for seed in (3,):
        for p in prompts[:3]:
            out = generate(exported, p["ids"], greedy=False, seed=seed, **kw)
            samples["settings_compare"].append({"setting": name, "prompt": p["prompt"], "text": dec.decode(out)})
json.dump(samples, open(os.path.join(train_dir, "samples.json"), "w"), indent=1, ensure_ascii=False)
for kind in ("greedy", "sampled"):
    for s in samples[kind]:
        print(f"[{kind}] {s['prompt']}|{s['text']!r}")
for s in samples["settings_compare"]:
    print(f"[{s['setting']}] {s['prompt']}|{s['text']!r}")
