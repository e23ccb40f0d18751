"""Loads the exported model folder with Hugging Face transformers and checks it against the folder's eval references.

    python check_transformers.py models/kjv-llama-tiny

Needs a Python with transformers and a torch it supports (Debian's torch 1.13 is too old for current transformers),
e.g. a venv: `python3 -m venv /tmp/tf && /tmp/tf/bin/pip install torch transformers` (CPU wheels are enough).
Checks: the folder loads as LlamaForCausalLM with no missing, unexpected or mismatched weights and no warnings;
held-out perplexity over eval/pytorch.json's windows equals the training script's; the greedy samples of
eval/samples.json come out identical.
"""
import json, math, sys, warnings, logging
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

torch.set_num_threads(1)
path = sys.argv[1]
transformers.logging.set_verbosity_warning()
records = []
class H(logging.Handler):
    def emit(self, r): records.append(r.getMessage())
transformers.logging.get_logger().addHandler(H())
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, dtype=torch.float32)
print("class:", type(model).__name__, "transformers", transformers.__version__, "torch", torch.__version__)
print("loading info:", {k: list(v) for k, v in info.items()})
print("logged warnings:", records)
print("python warnings:", [str(x.message)[:200] for x in w])
tok = AutoTokenizer.from_pretrained(path)
model.eval()
ref = json.load(open(f"{path}/eval/pytorch.json"))
text = open(f"{path}/eval/heldout.txt").read()
tok.model_max_length = len(text)  # the held-out text is tokenized whole, then cut into the reference windows
ids = tok(text)["input_ids"]
nll, n = 0.0, 0
per = []
with torch.no_grad():
    for win in ref["windows"]:
        s, L = win["start"], win["tokens"]
        x = torch.tensor([ids[s:s + L]])
        logits = model(x).logits[0].double()
        lp = torch.log_softmax(logits[:-1], -1)
        t = x[0, 1:]
        w_nll = -lp[torch.arange(L - 1), t].sum().item()
        per.append((w_nll, win["nll_sum"]))
        nll += w_nll; n += L - 1
ppl = math.exp(nll / n)
print(f"held-out perplexity: transformers {ppl:.6f}, our PyTorch script {ref['perplexity']:.6f}, rel diff {abs(ppl-ref['perplexity'])/ref['perplexity']:.2e}")
print("max window nll diff:", max(abs(a - b) for a, b in per))
samples = json.load(open(f"{path}/eval/samples.json"))
same = 0
for smp in samples:
    p = tok(smp["prompt"], return_tensors="pt")
    out = model.generate(**p, max_new_tokens=len(smp["greedy_ids"]), max_length=None, do_sample=False,
                         repetition_penalty=1.0, eos_token_id=None)
    new = out[0, p["input_ids"].shape[1]:].tolist()
    same += new == smp["greedy_ids"]
print(f"greedy samples identical: {same}/{len(samples)}")
