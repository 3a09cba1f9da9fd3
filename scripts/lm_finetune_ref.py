#!/usr/bin/env python3
"""Fine-tunes in float, with PyTorch and Hugging Face peft, exactly the LoRA run that exact mode
does (crates/lm/tests/fixtures/finetune/run.json), and records both side by side.

    make lm-finetune-ref        (or: scripts/lm_finetune_ref.py --out /tmp/pedals-ft)

First runs `cargo run --release -p pedals-lm --example finetune_ref -- OUT`, which writes the
exact model's real values as a Hugging Face folder, the initial adapters in peft's format, the
tokenized examples and every step's batch, then fine-tunes in exact mode. This script then
loads the same base and the same initial adapters with peft, trains them with torch.optim.Adam
on the same batches with the same learning-rate schedule, and writes
crates/lm/tests/vectors/finetune_float.json: the float and exact losses, the exact adapter's
hash, and the greedy tokens that peft + transformers generate with the exact adapter. The Rust
test (`cargo test --workspace --test it finetune_matches_float`) checks exact mode against it.

With a run whose "method" is "full" (crates/lm/tests/fixtures/finetune/run_full.json), every
weight is trained instead, in plain PyTorch (no peft), and the greedy tokens come from
transformers loading the exact run's whole model (full_exact/); the vector is
crates/lm/tests/vectors/finetune_full_float.json.
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

import peft
import torch
import transformers
from peft import PeftModel
from transformers import AutoModelForCausalLM


def rate(terms: dict, t: int) -> float:
    """The schedule of crates/lm/src/train/adam.rs in real numbers."""
    lr, end, warm, steps = terms["lr"], terms["lr_end"], terms["warmup"], terms["steps"]
    if t < warm:
        return lr * (t + 1) / warm
    if steps == warm:
        return lr
    done = min(t + 1 - warm, steps - warm)
    return lr - (lr - end) * done / (steps - warm)


def seq_loss(model, ex: dict) -> tuple[torch.Tensor, int]:
    """Σ −ln p over the scored targets of one example, and their count."""
    ids = torch.tensor([ex["tokens"]])
    logits = model(input_ids=ids[:, :-1]).logits[0]
    targets = ids[0, 1:]
    first = max(ex["prompt"], 1) - 1
    lp = torch.log_softmax(logits[first:], dim=-1)
    nll = -lp.gather(1, targets[first:, None]).sum()
    return nll, len(targets) - first


def mean_loss(model, examples: list[dict]) -> float:
    with torch.no_grad():
        tot, n = 0.0, 0
        for ex in examples:
            s, k = seq_loss(model, ex)
            tot, n = tot + s.item(), n + k
    return tot / n


def greedy(model, prompt: list[int], n: int) -> tuple[list[int], float]:
    """n greedy tokens (whole-sequence forward each time, as the exact check does) and the
    smallest gap between the best and second-best logit."""
    seq, margin = list(prompt), float("inf")
    with torch.no_grad():
        for _ in range(n):
            last = model(input_ids=torch.tensor([seq])).logits[0, -1]
            top = torch.topk(last, 2)
            margin = min(margin, (top.values[0] - top.values[1]).item())
            seq.append(int(top.indices[0]))
    return seq[len(prompt):], margin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/pedals-ft")
    ap.add_argument("--vector", help="default: finetune_float.json, or finetune_full_float.json "
                    "for a full run, in crates/lm/tests/vectors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run", help="another run file than the fixtures' run.json (a benchmark)")
    ap.add_argument("--skip-exact", action="store_true", help="reuse OUT from an earlier run")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not a.skip_exact:
        subprocess.run(["cargo", "run", "--release", "-q", "-p", "pedals-lm", "--example",
                        "finetune_ref", "--", a.out] + ([a.run] if a.run else []), check=True)
    plan = json.load(open(os.path.join(a.out, "plan.json")))
    exact = json.load(open(os.path.join(a.out, "exact.json")))
    terms = plan["terms"]
    full = plan.get("method") == "full"
    vectors = "crates/lm/tests/vectors"
    a.vector = a.vector or os.path.join(
        vectors, "finetune_full_float.json" if full else "finetune_float.json")

    base = AutoModelForCausalLM.from_pretrained(os.path.join(a.out, "base"), dtype=torch.float32)
    if full:
        model = base
    else:
        model = PeftModel.from_pretrained(base, os.path.join(a.out, "adapter_init"),
                                          is_trainable=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=terms["lr"], betas=tuple(terms["betas"]), eps=terms["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: rate(terms, t) / terms["lr"])
    held_init = mean_loss(model, plan["heldout"])
    losses, tokens = [], 0
    started = time.perf_counter()
    for batch in plan["batches"]:
        opt.zero_grad()
        tot, n = 0.0, 0
        for i in batch:
            s, k = seq_loss(model, plan["train"][i])
            tot, n = tot + s, n + k
        loss = tot / n
        loss.backward()
        opt.step()
        sched.step()
        losses.append(round(loss.item(), 6))
        tokens += n
    secs = time.perf_counter() - started
    held = mean_loss(model, plan["heldout"])
    print(f"float: held-out loss {held_init:.4f} -> {held:.4f}; {len(losses)} steps in "
          f"{secs:.1f} s ({tokens / secs:.0f} tokens/s)")
    print(f"exact: held-out loss {exact['heldout_init']:.4f} -> {exact['heldout_final']:.4f}; "
          f"{exact['tokens'] / exact['seconds']:.0f} tokens/s")

    if full:
        # The exact run's whole model, loaded by transformers, generating greedily.
        exact_model = AutoModelForCausalLM.from_pretrained(
            os.path.join(a.out, "full_exact"), dtype=torch.float32).eval()
        result = os.path.join(a.out, "full_exact", "model.safetensors")
    else:
        # The exact adapter, loaded by peft onto the same base, generating greedily.
        base2 = AutoModelForCausalLM.from_pretrained(os.path.join(a.out, "base"),
                                                     dtype=torch.float32)
        exact_model = PeftModel.from_pretrained(base2,
                                                os.path.join(a.out, "adapter_exact")).eval()
        result = os.path.join(a.out, "adapter_exact", "adapter_model.safetensors")
    tokens_peft, margin = greedy(exact_model, plan["prompt"], plan["greedy_tokens"])
    print(f"{'transformers' if full else 'peft'} greedy with the exact result: {tokens_peft} "
          f"(min margin {margin:.4f}); exact mode: {exact['greedy']}")
    adapter = open(result, "rb").read()
    vector = {
        "terms": terms,
        "float_train_loss": losses,
        "float_heldout_init": round(held_init, 6),
        "float_heldout_final": round(held, 6),
        "float_tokens_per_s": round(tokens / secs, 1),
        "exact_heldout_init": round(exact["heldout_init"], 6),
        "exact_heldout_final": round(exact["heldout_final"], 6),
        "exact_train_loss": [round(v, 6) for v in exact["train_loss"]],
        "exact_tokens_per_s": round(exact["tokens"] / exact["seconds"], 1),
        "method": "full" if full else "lora",
        "exact_adapter_sha256": hashlib.sha256(adapter).hexdigest(),
        "prompt": plan["prompt"],
        "peft_greedy_with_exact_adapter": tokens_peft,
        "peft_greedy_min_margin": round(margin, 6),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "python": sys.version.split()[0],
                     "machine": platform.machine()},
    }
    with open(a.vector, "w") as f:
        json.dump(vector, f, indent=1)
        f.write("\n")
    print(f"wrote {a.vector}")


if __name__ == "__main__":
    main()
