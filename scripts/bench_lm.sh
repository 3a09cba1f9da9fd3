#!/usr/bin/env bash
# Side-by-side language-model speed on the CPU, in one run with the same thread count: Pedals
# exact mode (8- and 16-bit weights) and float mode, and Hugging Face transformers (PyTorch f32),
# on the same checkpoint folder. One JSON line per implementation, then the ratios;
# docs/BENCHMARKS.md records them with the machine and the date.
#   scripts/bench_lm.sh --model DIR [--prompt 128] [--decode 64] [--threads 1] [--gguf FILE]
# The PyTorch side runs in .venv-bench/ (scripts/requirements-bench.txt, installed on first use).
# With --gguf (the same checkpoint at Q8_0, made by scripts/bench_lm_llamacpp.py --convert),
# llama.cpp runs too, through llama-cpp-python installed in .venv-bench by hand: it builds
# llama.cpp from source (docs/BENCHMARKS.md gives the command).
set -euo pipefail
cd "$(dirname "$0")/.."
model="" prompt=128 decode=64 threads=1 gguf=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --gguf) gguf=$(realpath "$2"); shift 2 ;;
    *) echo "usage: scripts/bench_lm.sh --model DIR [--prompt N] [--decode N] [--threads T] [--gguf FILE]" >&2; exit 2 ;;
  esac
done
[ -n "$model" ] || { echo "give --model DIR (a Hugging Face checkpoint folder, e.g. one scripts/lm_fixtures.py made)" >&2; exit 2; }
model=$(realpath "$model")  # cargo bench runs the binary in crates/lm

. scripts/bench_venv.sh

export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads HF_HUB_OFFLINE=1
cargo bench -q -p pedals-lm --bench generate --no-run >/dev/null 2>&1 || cargo bench -p pedals-lm --bench generate --no-run
out=$(mktemp)
run() { cargo bench -q -p pedals-lm --bench generate -- --model "$model" --prompt "$prompt" --decode "$decode" --threads "$threads" "$@" | tee -a "$out"; }
run --mode exact --bits 8
run --mode exact --bits 16
run --mode float
"$venv/bin/python" scripts/bench_lm_torch.py --model "$model" --prompt "$prompt" --decode "$decode" --threads "$threads" | tee -a "$out"
if [ -n "$gguf" ]; then
  "$venv/bin/python" scripts/bench_lm_llamacpp.py --model "$gguf" --prompt "$prompt" --decode "$decode" --threads "$threads" | tee -a "$out"
fi
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ref = next(r for r in rows if r["impl"].startswith("transformers"))
print(f"\n{'implementation':34} {'prefill tok/s':>14} {'decode tok/s':>13} {'x transformers (prefill, decode)':>34}")
for r in rows:
    pre, dec = r["prefill_tok_s"], r.get("decode_tok_s")
    ratio = f"{pre / ref['prefill_tok_s']:.2f}, " + (f"{dec / ref['decode_tok_s']:.2f}" if dec else "-")
    print(f"{r['impl']:34} {pre:14.1f} {dec if dec else '-':>13} {ratio:>34}")
PY
