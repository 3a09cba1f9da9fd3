#!/usr/bin/env python3
"""Prefill and decode speed of a Hugging Face checkpoint in `transformers` (PyTorch f32, on the
CPU or, with --device cuda, a GPU: one untimed warm-up run first, the GPU synchronized before
each clock read),
measured as crates/lm/benches/generate.rs measures Pedals: the same pseudo-random prompt, a
prefill through the cache, then greedy decoding one token at a time. Prints one JSON line.
Run by scripts/bench_lm.sh in .venv-bench:
  python scripts/bench_lm_torch.py --model DIR --prompt 128 --decode 64 --threads 1"""
import argparse
import json
import resource
import time

import torch
from transformers import AutoModelForCausalLM

from lm_prompt import prompt

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--prompt", type=int, default=128)
p.add_argument("--decode", type=int, default=64)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--device", default="cpu")
a = p.parse_args()
torch.set_num_threads(a.threads)
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="eager").eval().to(a.device)
vocab = model.config.vocab_size

ids = prompt(vocab, a.prompt)
prompt = torch.tensor([ids], device=a.device)


def sync():
    if a.device != "cpu":
        torch.cuda.synchronize()


def run():
    sync()
    t0 = time.perf_counter()
    out = model(prompt, use_cache=True)
    sync()
    prefill = time.perf_counter() - t0
    past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    t1 = time.perf_counter()
    for _ in range(a.decode):
        out = model(nxt, past_key_values=past, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    sync()
    return prefill, time.perf_counter() - t1


with torch.inference_mode():
    if a.device != "cpu":
        run()
    prefill, decode = run()
print(json.dumps({
    "impl": f"transformers-f32 (torch {torch.__version__})",
    "device": torch.cuda.get_device_name() if a.device != "cpu" else "cpu",
    "threads": a.threads,
    "prompt": a.prompt,
    "decode": a.decode,
    "prefill_tok_s": round(a.prompt / prefill, 1),
    "decode_tok_s": round(a.decode / decode, 2),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
