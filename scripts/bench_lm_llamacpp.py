#!/usr/bin/env python3
"""Prefill and decode speed of llama.cpp at Q8_0 (through `llama-cpp-python`, built from source
on this machine), measured as crates/lm/benches/generate.rs measures Pedals: the same
pseudo-random prompt, a prefill, then greedy decoding one token at a time. Prints one JSON line.

  python scripts/bench_lm_llamacpp.py --convert DIR --llama-cpp SRC --out MODEL.gguf
      converts a Hugging Face checkpoint folder to GGUF Q8_0 with the converter that ships in
      llama-cpp-python's source (SRC: its vendor/llama.cpp folder). The project's fixtures have
      their own byte-level BPE tokenizer, which the converter does not know by hash; the
      benchmark feeds token ids, so it is declared GPT-2-style (what it is).
  python scripts/bench_lm_llamacpp.py --model MODEL.gguf --prompt 128 --decode 64 --threads 1"""
import argparse
import json
import resource
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--model")
p.add_argument("--convert")
p.add_argument("--llama-cpp")
p.add_argument("--out")
p.add_argument("--prompt", type=int, default=128)
p.add_argument("--decode", type=int, default=64)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()

if a.convert:
    sys.path[:0] = [a.llama_cpp, f"{a.llama_cpp}/gguf-py"]
    sys.argv = ["convert_hf_to_gguf.py", a.convert, "--outtype", "q8_0", "--outfile", a.out]
    import convert_hf_to_gguf
    from conversion import base

    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
    convert_hf_to_gguf.main()
    sys.exit(0)

import llama_cpp  # noqa: E402
import numpy as np  # noqa: E402
from lm_prompt import prompt  # noqa: E402
from llama_cpp import Llama  # noqa: E402

llm = Llama(model_path=a.model, n_ctx=a.prompt + a.decode + 8, n_threads=a.threads,
            n_threads_batch=a.threads, n_batch=max(a.prompt, 8), logits_all=False, verbose=False)
vocab = llm.n_vocab()
ids = prompt(vocab, a.prompt)

t0 = time.perf_counter()
llm.eval(ids)
prefill = time.perf_counter() - t0
t1 = time.perf_counter()
for _ in range(a.decode):
    last = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    nxt = int(np.ctypeslib.as_array(last, shape=(vocab,)).argmax())
    llm.eval([nxt])
decode = time.perf_counter() - t1
print(json.dumps({
    "impl": "llama.cpp-q8_0 (llama-cpp-python)",
    "threads": a.threads,
    "prompt": a.prompt,
    "decode": a.decode,
    "prefill_tok_s": round(a.prompt / prefill, 1),
    "decode_tok_s": round(a.decode / decode, 2),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
