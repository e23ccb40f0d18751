"""Trains the tiny Llama on the tokenized KJV (work/data/*.bin) on CPU.

    python3 train.py <data dir> <out dir> [--steps N] [--bench K]

Model: llama.LlamaForCausalLM (transformers' math and parameter names).
Data: the training stream (<s> chapter </s> <s> chapter </s> ...) is cut into windows of
CTX+1 tokens at offsets drawn from a seeded torch.Generator, so the data order is fixed.
Optimiser: AdamW, linear warmup then cosine decay to 10% of the peak learning rate.
Logs train loss (mean over the last LOG_EVERY steps) and validation loss (fixed set of
non-overlapping windows of the validation stream) to <out dir>/train_log.tsv.
Writes <out dir>/model_f32.pt (the final f32 weights) and <out dir>/config.json.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from llama import LlamaForCausalLM

CONFIG = {
    "vocab_size": 4096,
    "hidden_size": 256,
    "intermediate_size": 704,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
}
HP = {
    "seed": 1234,
    "context": 256,
    "batch_size": 16,
    "peak_lr": 3e-3,
    "min_lr_ratio": 0.1,
    "warmup_steps": 60,
    "weight_decay": 0.1,
    "betas": (0.9, 0.95),
    "grad_clip": 1.0,
    "init_std": 0.02,
    "log_every": 25,
    "eval_every": 100,
    "threads": int(os.environ.get("TRAIN_THREADS", "1")),  # see README: 1 beats 2 on a busy 2-core box
}


def load_bin(path):
    return torch.from_numpy(np.fromfile(path, dtype="<u2").astype(np.int64))


def lr_at(step, total):
    if step < HP["warmup_steps"]:
        return HP["peak_lr"] * (step + 1) / HP["warmup_steps"]
    p = (step - HP["warmup_steps"]) / max(1, total - HP["warmup_steps"])
    return HP["peak_lr"] * (HP["min_lr_ratio"] + (1 - HP["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def val_loss(model, val_windows):
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(val_windows), 16):
        w = val_windows[i:i + 16]
        logits = model(w[:, :-1])
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        n += w[:, 1:].numel()
    model.train()
    return tot / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    torch.set_num_threads(HP["threads"])
    torch.manual_seed(HP["seed"])
    model = LlamaForCausalLM(CONFIG)
    model.init_weights(HP["init_std"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params: {n_params} ({n_params * 2 / 1e6:.2f} MB in bf16)", flush=True)

    train = load_bin(os.path.join(args.data, "train.bin"))
    val = load_bin(os.path.join(args.data, "val.bin"))
    T, B = HP["context"], HP["batch_size"]
    nv = (len(val) - 1) // (T + 1)
    val_windows = val[: nv * (T + 1)].view(nv, T + 1)  # non-overlapping windows, fixed
    gen = torch.Generator().manual_seed(HP["seed"])

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=HP["peak_lr"], betas=HP["betas"], eps=1e-8)

    steps = args.bench or args.steps
    log = open(os.path.join(args.out, "train_log.tsv" if not args.bench else "bench_log.tsv"), "w")
    log.write("step\ttokens\telapsed_s\tlr\ttrain_loss\tval_loss\n")
    t0 = time.time()
    run_loss, run_n = 0.0, 0
    for step in range(steps):
        lr = lr_at(step, steps)
        for g in opt.param_groups:
            g["lr"] = lr
        offs = torch.randint(0, len(train) - T - 1, (B,), generator=gen)
        batch = torch.stack([train[o:o + T + 1] for o in offs.tolist()])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        opt.step()
        run_loss += loss.item()
        run_n += 1
        last = step == steps - 1
        if args.bench:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.1f}s", flush=True)
        if (step + 1) % HP["log_every"] == 0 or last:
            vl = val_loss(model, val_windows) if ((step + 1) % HP["eval_every"] == 0 or last) and not args.bench else float("nan")
            line = f"{step + 1}\t{(step + 1) * B * T}\t{time.time() - t0:.1f}\t{lr:.6f}\t{run_loss / run_n:.4f}\t{vl:.4f}"
            log.write(line + "\n")
            log.flush()
            print(line, flush=True)
            run_loss, run_n = 0.0, 0
        if (step + 1) % 200 == 0 and not args.bench:  # checkpoint, in case the run must be cut short
            torch.save({"step": step + 1, "model": model.state_dict()}, os.path.join(args.out, "checkpoint.pt"))
    wall = time.time() - t0
    if args.bench:
        print(f"{wall / steps:.2f} s/step")
        return
    final_val = val_loss(model, val_windows)
    torch.save(model.state_dict(), os.path.join(args.out, "model_f32.pt"))
    summary = {"config": CONFIG, "hp": {**HP, "steps": steps}, "params": n_params, "train_wall_s": wall,
               "train_tokens_seen": steps * B * T, "train_stream_tokens": len(train),
               "val_windows": nv, "final_val_loss_f32": final_val}
    json.dump(summary, open(os.path.join(args.out, "train_summary.json"), "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
