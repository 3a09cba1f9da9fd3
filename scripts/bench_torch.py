#!/usr/bin/env python3
"""One SGD-with-momentum training step of an MLP in PyTorch f32, timed the same way as
crates/ml/benches/step.rs: median milliseconds per step after a warm-up (each step finished,
`torch.cuda.synchronize()` on a GPU), samples per second and peak resident memory, as one
JSON line.

    python scripts/bench_torch.py --layers 784,128,10 --batch 64 --threads 1
    python scripts/bench_torch.py --device cuda --layers 1020,1020,1020,10 --batch 1024 [--tf32]

On CUDA, TF32 tensor cores are off unless --tf32 is given (PyTorch's default for matmul).
"""
import argparse
import json
import resource
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", default="784,128,10")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tf32", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    device = torch.device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    widths = [int(w) for w in a.layers.split(",")]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.rand(a.batch, widths[0], device=device)
    y = torch.randint(0, widths[-1], (a.batch,), device=device)
    times = []
    for step in range(a.warmup + a.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sync()
        if step >= a.warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "impl": f"pytorch-{torch.__version__}-f32-{a.device}"
        + (f"-{a.threads}t" if device.type == "cpu" else ("-tf32" if a.tf32 else "-no-tf32")),
        "layers": widths,
        "batch": a.batch,
        "steps": len(times),
        "median_ms": round(median, 4),
        "mean_ms": round(sum(times) / len(times), 4),
        "samples_per_s": round(a.batch / (median / 1000.0), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }))


if __name__ == "__main__":
    main()
