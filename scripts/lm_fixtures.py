#!/usr/bin/env python3
"""Small, real Hugging Face decoder-only checkpoints and reference outputs for the Rust
reimplementation of decoder-only transformers (crates/lm).

For one preset it writes, under --out (default crates/lm/tests/fixtures):

    corpus.json              where the text came from and how it was split
    llama-<preset>/          LlamaForCausalLM (RMSNorm, RoPE, SwiGLU, grouped-query attention)
    gpt2-<preset>/           GPT2ForCausalLM (LayerNorm, learned positions, gelu_new)

and in each model folder: config.json, generation_config.json and model.safetensors exactly as
`save_pretrained(..., safe_serialization=True)` writes them (float32, tied embeddings), the
tokenizer (tokenizer.json and a minimal tokenizer_config.json) and reference.json: the prompt,
its logits from a plain forward pass, a greedy continuation from `generate`, and the mean
next-token negative log-likelihood and argmax predictions over 512 held-out tokens.

How the fixtures are made:

1. Corpus: the English fortune cookies of the Debian package `fortunes` (`apt-get download
   fortunes`, no root needed, then `dpkg-deb -x`; or --deb PATH for a .deb already at hand).
   The text files under usr/share/games/fortunes/ are read in name order (the .dat index files
   and the *.u8 symlinks are skipped), split into fortunes at lines holding only `%`, and the
   fortunes are joined with a blank line. The last 5% of the fortunes (rounded up) are held out.
   The text is used verbatim (a few fortunes hold backspace overstrikes; they stay).
2. Tokenizer: a byte-level BPE (`tokenizers`) trained on the training text, with the ByteLevel
   pre-tokenizer (GPT-2's regex, no prefix space) and decoder, and `<|endoftext|>` as id 0.
   The special token never occurs in the text, so ids 1..256 are the 256 bytes and the rest merges.
3. Models: built from config objects (nothing is fetched from the Hub: HF_HUB_OFFLINE=1), trained
   on CPU with AdamW on random windows of 64+1 tokens, 16 per batch, every random number from
   a fixed seed, so two runs on one machine write byte-identical files.
4. References: the model in eval mode, float32, eager attention, no gradient.

Run it with the bench virtualenv (scripts/requirements-bench.txt):

    .venv-bench/bin/python scripts/lm_fixtures.py --preset tiny        # committed CI fixtures
    .venv-bench/bin/python scripts/lm_fixtures.py --preset 10m --out target/lm-fixtures
    .venv-bench/bin/python scripts/lm_fixtures.py --preset 100m --out target/lm-fixtures --steps 2000 --threads 16

The 10m and 100m checkpoints are for people to run locally; they must not be committed (give
them an --out outside the repository's tracked folders, e.g. target/, which git ignores).
"""
import argparse
import glob
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

# No network access to the Hub, ever: everything here is built from local objects. These must
# be set before transformers (or huggingface_hub) is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM  # noqa: E402

EOT = "<|endoftext|>"  # the only special token, id 0 (also bos, eos and pad of the models)
SEQ_LEN = 64  # training window (the model sees 64 tokens and predicts the next 64)
BATCH = 16
PROMPT_LEN = 24  # tokens of the reference prompt
NEW_TOKENS = 24  # tokens the greedy reference generates
EVAL_LEN = 512  # held-out tokens for eval_nll / eval_top1
HELDOUT_FRACTION = 0.05
JOINER = "\n\n"  # between fortunes in the joined text

# Shapes of each preset. `intermediate` is per family: GPT-2 uses the usual 4 x hidden; Llama's
# SwiGLU has three matrices, so it takes a smaller width (tiny's is the one the brief fixes, the
# others are chosen so the Llama totals come near 10M and 100M parameters).
PRESETS = {
    "tiny": dict(hidden=48, layers=2, heads=4, kv_heads=2, head_dim=12, vocab=384, positions=128,
                 intermediate={"llama": 128, "gpt2": 192}, steps=300, lr=3e-3, log_every=50),
    "10m": dict(hidden=256, layers=8, heads=8, kv_heads=4, head_dim=32, vocab=4096, positions=512,
                intermediate={"llama": 1152, "gpt2": 1024}, steps=1000, lr=1e-3, log_every=50),
    "100m": dict(hidden=768, layers=12, heads=12, kv_heads=4, head_dim=64, vocab=8192, positions=1024,
                 intermediate={"llama": 2688, "gpt2": 3072}, steps=500, lr=6e-4, log_every=10),
}
FAMILIES = ("llama", "gpt2")
FORTUNES_DIR = "usr/share/games/fortunes"


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def get_deb(package: str, workdir: str, deb: str | None) -> str:
    """Path of the package's .deb: the one given, or one fetched with `apt-get download`
    (which needs no root; it writes into the current directory, here a temp dir)."""
    if deb:
        return deb
    subprocess.run(["apt-get", "download", package], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    debs = sorted(glob.glob(os.path.join(workdir, f"{package}_*.deb")))
    if len(debs) != 1:
        raise SystemExit(f"apt-get download {package}: expected one .deb, found {debs}")
    return debs[0]


def read_fortunes(root: str) -> tuple[list[str], list[str]]:
    """All fortunes of the extracted package, in file-name order then file order, and the names
    of the files read. A fortune is the text between two lines holding only `%`; blank
    lines around it are dropped, everything else (indentation, tabs) kept."""
    folder = os.path.join(root, FORTUNES_DIR)
    names = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        # .dat files are strfile's binary indexes; *.u8 are symlinks to the same text.
        if name.endswith(".dat") or name.endswith(".u8") or os.path.islink(path):
            continue
        if os.path.isfile(path):
            names.append(name)
    fortunes = []
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            text = f.read().decode("utf-8")
        current: list[str] = []
        for line in text.split("\n") + ["%"]:  # a final "%" closes the last fortune
            if line == "%":
                fortune = "\n".join(current).strip("\n")
                if fortune.strip():
                    fortunes.append(fortune)
                current = []
            else:
                current.append(line)
    return fortunes, names


def build_corpus(package: str, deb: str | None) -> tuple[str, str, dict]:
    """(train text, held-out text, what corpus.json records)."""
    with tempfile.TemporaryDirectory() as tmp:
        deb_path = get_deb(package, tmp, deb)
        version = subprocess.run(["dpkg-deb", "-f", deb_path, "Version"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        with open(deb_path, "rb") as f:
            deb_sha = sha256_bytes(f.read())
        root = os.path.join(tmp, "x")
        subprocess.run(["dpkg-deb", "-x", deb_path, root], check=True)
        fortunes, files = read_fortunes(root)
    n_heldout = math.ceil(len(fortunes) * HELDOUT_FRACTION)
    train = JOINER.join(fortunes[:-n_heldout])
    heldout = JOINER.join(fortunes[-n_heldout:])
    info = {
        "package": package,
        "version": version,
        "deb_sha256": deb_sha,
        "files": [f"{FORTUNES_DIR}/{n}" for n in files],
        "split": (f"fortunes separated by lines holding only '%', files in name order; the last "
                  f"ceil({HELDOUT_FRACTION} * n) fortunes are held out; fortunes joined with "
                  f"{JOINER!r}; text verbatim (UTF-8)"),
        "fortunes_train": len(fortunes) - n_heldout,
        "fortunes_heldout": n_heldout,
        "train_chars": len(train),
        "heldout_chars": len(heldout),
        "train_sha256": sha256_bytes(train.encode("utf-8")),
        "heldout_sha256": sha256_bytes(heldout.encode("utf-8")),
    }
    return train, heldout, info


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

def train_tokenizer(text: str, vocab_size: int) -> Tokenizer:
    """Byte-level BPE like GPT-2's: the 256 byte symbols are always in the vocabulary (after
    the special token, id 0), merges fill the rest up to vocab_size."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer=trainer)
    assert tok.token_to_id(EOT) == 0
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


def save_tokenizer(tok: Tokenizer, folder: str, max_positions: int) -> None:
    tok.save(os.path.join(folder, "tokenizer.json"))
    # Just enough for transformers' AutoTokenizer to load tokenizer.json as a fast tokenizer.
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": EOT,
        "eos_token": EOT,
        "unk_token": EOT,
        "pad_token": EOT,
        "add_prefix_space": False,
        "model_max_length": max_positions,
    }
    write_json(os.path.join(folder, "tokenizer_config.json"), config)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def make_model(family: str, p: dict) -> torch.nn.Module:
    """A freshly initialised float32 model (initialised from the torch RNG, which the caller
    seeds). Token ids 0 are bos, eos and pad; dropout is off (tiny, brief training)."""
    if family == "llama":
        config = LlamaConfig(
            vocab_size=p["vocab"],
            hidden_size=p["hidden"],
            intermediate_size=p["intermediate"]["llama"],
            num_hidden_layers=p["layers"],
            num_attention_heads=p["heads"],
            num_key_value_heads=p["kv_heads"],
            head_dim=p["head_dim"],
            hidden_act="silu",
            max_position_embeddings=p["positions"],
            rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            tie_word_embeddings=True,
            attention_bias=False,
            mlp_bias=False,
            attention_dropout=0.0,
            bos_token_id=0, eos_token_id=0, pad_token_id=0,
            dtype="float32",
        )
        assert config.head_dim * config.num_attention_heads == config.hidden_size
        model = LlamaForCausalLM._from_config(config, attn_implementation="eager")
    elif family == "gpt2":
        assert p["head_dim"] * p["heads"] == p["hidden"]
        config = GPT2Config(
            vocab_size=p["vocab"],
            n_positions=p["positions"],
            n_embd=p["hidden"],
            n_layer=p["layers"],
            n_head=p["heads"],
            n_inner=p["intermediate"]["gpt2"],
            activation_function="gelu_new",
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            layer_norm_epsilon=1e-5,
            tie_word_embeddings=True,
            bos_token_id=0, eos_token_id=0, pad_token_id=0,
            dtype="float32",
        )
        # GPT2ForCausalLM is the name the brief uses; transformers calls it GPT2LMHeadModel.
        model = GPT2LMHeadModel._from_config(config, attn_implementation="eager")
    else:
        raise ValueError(family)
    return model.to(torch.float32)


def train(model: torch.nn.Module, ids: torch.Tensor, steps: int, lr: float, seed: int,
          log_every: int) -> dict:
    """AdamW on random windows of the training ids; linear warm-up over the first 10% of the
    steps, then cosine decay to lr/10. Returns a summary of the losses."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    warmup = max(1, steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))

    model.train()
    vocab = model.config.vocab_size
    losses = []
    started = time.time()
    for step in range(steps):
        starts = torch.randint(0, len(ids) - SEQ_LEN - 1, (BATCH,), generator=gen)
        batch = torch.stack([ids[s: s + SEQ_LEN + 1] for s in starts.tolist()])
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            recent = losses[-log_every:]
            print(f"  step {step + 1:5d}/{steps}  loss {losses[-1]:.4f}  "
                  f"mean of last {len(recent)} {sum(recent) / len(recent):.4f}  "
                  f"lr {lr_at(step):.2e}  {time.time() - started:.0f}s", flush=True)
    model.eval()
    last = losses[-20:]
    return {
        "steps": steps, "batch": BATCH, "seq_len": SEQ_LEN, "lr": lr, "seed": seed,
        "optimizer": "AdamW(betas=(0.9, 0.95), weight_decay=0.01), grad clip 1.0, "
                     "10% linear warm-up then cosine to lr/10",
        "loss_first": round_sig(losses[0]),
        "loss_last": round_sig(losses[-1]),
        "loss_last20_mean": round_sig(sum(last) / len(last)),
    }


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------

def round_sig(x: float, digits: int = 7) -> float:
    """x rounded to `digits` significant digits (then printed by json as its shortest repr)."""
    return float(f"{x:.{digits}g}")


def round_list(values) -> list:
    return [round_sig(v) for v in values]


@torch.no_grad()
def references(model: torch.nn.Module, tok: Tokenizer, heldout: str, max_positions: int) -> dict:
    heldout_ids = tok.encode(heldout).ids
    assert len(heldout_ids) >= EVAL_LEN, len(heldout_ids)

    # Prompt: the first 24 held-out tokens; its logits from one plain forward pass, no cache.
    prompt_ids = heldout_ids[:PROMPT_LEN]
    prompt = torch.tensor([prompt_ids])
    logits = model(input_ids=prompt, use_cache=False).logits[0].float()

    # Greedy continuation with transformers' generate (which does use the KV cache).
    out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                         do_sample=False, max_new_tokens=NEW_TOKENS, pad_token_id=0)
    greedy = out[0, PROMPT_LEN:].tolist()
    # The same argmax loop without any cache, as a check that the two agree.
    # The gap between the best and second-best logit at each step says how safely another
    # implementation (with other rounding) can be expected to pick the same tokens.
    seq = list(prompt_ids)
    margins = []
    for _ in range(NEW_TOKENS):
        step_logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
        seq.append(int(step_logits.argmax()))
        top2 = step_logits.topk(2).values
        margins.append(float(top2[0] - top2[1]))
    if seq[PROMPT_LEN:] != greedy:
        print(f"  note: generate() {greedy} differs from the uncached argmax loop "
              f"{seq[PROMPT_LEN:]}", flush=True)
    if len(greedy) != NEW_TOKENS:
        print(f"  note: generate() stopped after {len(greedy)} tokens (eos)", flush=True)

    # Held-out NLL and top-1 predictions over non-overlapping chunks of max_positions tokens.
    eval_ids = heldout_ids[:EVAL_LEN]
    total_nll = 0.0
    predicted = 0
    correct = 0
    top1 = []
    eval_margins = []
    for start in range(0, EVAL_LEN, max_positions):
        chunk = eval_ids[start: start + max_positions]
        if len(chunk) < 2:
            continue
        chunk_logits = model(input_ids=torch.tensor([chunk]), use_cache=False).logits[0, :-1]
        targets = torch.tensor(chunk[1:])
        logp = torch.log_softmax(chunk_logits.double(), dim=-1)
        total_nll -= logp.gather(1, targets[:, None]).sum().item()
        predicted += len(targets)
        argmax = chunk_logits.argmax(dim=-1)
        top2 = chunk_logits.topk(2, dim=-1).values
        eval_margins.extend((top2[:, 0] - top2[:, 1]).tolist())
        correct += int((argmax == targets).sum())
        top1.extend(argmax.tolist())
    eval_nll = total_nll / predicted
    top1_acc = correct / predicted

    return {
        "prompt_ids": prompt_ids,
        "prompt_text": tok.decode(prompt_ids),
        "logits": [round_list(row) for row in logits.tolist()],
        "greedy": greedy,
        "greedy_text": tok.decode(greedy),
        "greedy_min_margin": round_sig(min(margins)),
        "eval_ids": eval_ids,
        "eval_chunk_len": max_positions,
        "eval_method": (
            f"eval_ids (the first {EVAL_LEN} tokens of the held-out text) cut into consecutive, "
            f"non-overlapping chunks of {max_positions} tokens (eval_ids[0:{max_positions}], "
            f"eval_ids[{max_positions}:{2 * max_positions}], ...; a final shorter chunk is kept "
            f"if it has at least 2 tokens). Each chunk is a separate forward pass starting at "
            f"position 0 with no cache and no context from earlier chunks; position i of a chunk "
            f"predicts chunk token i+1, so a chunk of n tokens gives n-1 predictions and the first "
            f"token of each chunk is never predicted. eval_nll = sum over all predictions of "
            f"-log_softmax(logits)[target] (float32 logits cast to float64, natural log) divided "
            f"by the number of predictions ({predicted}), i.e. token-weighted over all chunks. "
            f"eval_top1 = argmax of the float32 logits at each predicted position, the chunks' "
            f"lists concatenated in order: for a chunk of n tokens starting at eval_ids[s], its "
            f"n-1 entries are aligned with eval_ids[s+1:s+n] (the chunk's targets)."),
        "eval_num_predicted": predicted,
        "eval_nll": round_sig(eval_nll),
        "eval_top1": top1,
        "eval_top1_acc": round_sig(top1_acc),
        "eval_top1_margins_below_1e-3": sum(m < 1e-3 for m in eval_margins),
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
    }


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

def write_json(path: str, obj: dict) -> None:
    """JSON with one top-level key per line and each list on one line (each row of a list of
    lists on its own line), so the fixture files stay small and diff line by line."""
    def compact(v) -> str:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

    lines = []
    for key, value in obj.items():
        if isinstance(value, list) and value and isinstance(value[0], list):
            rows = ",\n".join("  " + compact(row) for row in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {compact(value)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def describe_safetensors(path: str) -> None:
    """Print the tensor names, dtypes and shapes as stored (read with the safetensors library)."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        print(f"  {path}: metadata {f.metadata()}")
        for name in f.keys():
            t = f.get_slice(name)
            print(f"    {name:48s} {t.get_dtype():5s} {t.get_shape()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--out", default="crates/lm/tests/fixtures",
                    help="output folder (default crates/lm/tests/fixtures: only for tiny)")
    ap.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--package", default="fortunes", help="Debian package of the corpus")
    ap.add_argument("--deb", help="use this .deb instead of `apt-get download`")
    a = ap.parse_args()

    p = PRESETS[a.preset]
    steps = a.steps if a.steps is not None else p["steps"]
    lr = a.lr if a.lr is not None else p["lr"]
    families = [f for f in a.families.split(",") if f]
    for family in families:
        if family not in FAMILIES:
            raise SystemExit(f"unknown family {family}")
    if a.preset != "tiny" and os.path.normpath(a.out).startswith("crates"):
        print(f"WARNING: the {a.preset} fixtures must not be committed; prefer an --out that git "
              f"ignores, e.g. target/lm-fixtures", file=sys.stderr)

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)

    train_text, heldout, corpus = build_corpus(a.package, a.deb)
    print(f"corpus: {corpus['package']} {corpus['version']}: {corpus['fortunes_train']} + "
          f"{corpus['fortunes_heldout']} fortunes, {corpus['train_chars']} + "
          f"{corpus['heldout_chars']} chars", flush=True)
    os.makedirs(a.out, exist_ok=True)
    write_json(os.path.join(a.out, "corpus.json"), corpus)

    tok = train_tokenizer(train_text, p["vocab"])
    train_ids = torch.tensor(tok.encode(train_text).ids, dtype=torch.long)
    print(f"tokenizer: vocab {tok.get_vocab_size()}, {len(train_ids)} training tokens", flush=True)

    for family in families:
        folder = os.path.join(a.out, f"{family}-{a.preset}")
        os.makedirs(folder, exist_ok=True)
        torch.manual_seed(a.seed)  # each family from the same seed, independent of the order
        model = make_model(family, p)
        n_params = sum(t.numel() for t in model.parameters())  # tied weights counted once
        print(f"{family}-{a.preset}: {n_params} parameters, {steps} steps, lr {lr}", flush=True)
        summary = train(model, train_ids, steps, lr, a.seed, p["log_every"])
        summary["parameters"] = n_params

        model.save_pretrained(folder, safe_serialization=True)
        save_tokenizer(tok, folder, p["positions"])
        ref = references(model, tok, heldout, p["positions"])
        ref["training"] = summary
        write_json(os.path.join(folder, "reference.json"), ref)
        print(f"  eval_nll {ref['eval_nll']}  top1 {ref['eval_top1_acc']}  "
              f"greedy {ref['greedy_text']!r}", flush=True)
        describe_safetensors(os.path.join(folder, "model.safetensors"))

        # The saved folder must load back, offline, into the same logits and tokens.
        reloaded = type(model).from_pretrained(folder, attn_implementation="eager").eval()
        with torch.no_grad():
            again = reloaded(input_ids=torch.tensor([ref["prompt_ids"]]), use_cache=False).logits[0]
        expect = model(input_ids=torch.tensor([ref["prompt_ids"]]), use_cache=False).logits[0]
        assert torch.equal(again, expect.detach()), "reloaded model gives other logits"
        hf_tok = transformers.AutoTokenizer.from_pretrained(folder)
        assert hf_tok(heldout[:2000])["input_ids"] == tok.encode(heldout[:2000]).ids

    for path in sorted(glob.glob(os.path.join(a.out, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digest = sha256_bytes(f.read())
            print(f"{os.path.getsize(path):9d}  {digest[:16]}  {path}")


if __name__ == "__main__":
    main()
