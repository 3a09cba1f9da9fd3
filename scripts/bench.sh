#!/usr/bin/env bash
# Side-by-side benchmark of one MLP training step on the CPU: Pedals exact mode (burn-flex, the
# crate's SIMD kernels on every instruction set this CPU has, the plain-Rust reference), Pedals
# float mode (burn-flex f32) and PyTorch f32, in one run, with the same thread count. Results go to stdout as JSON lines plus a ratio table;
# docs/BENCHMARKS.md records them with the machine and the date.
#   scripts/bench.sh [--layers 784,128,10] [--batch 64] [--steps 200] [--threads 1]
# PyTorch (pinned in scripts/requirements-bench.txt) is installed into .venv-bench/ on first
# use; its wheel pulls CUDA libraries, about 5 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
layers=784,128,10 batch=64 steps=200 threads=1
while [ $# -gt 0 ]; do
  case "$1" in
    --layers) layers=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: scripts/bench.sh [--layers L] [--batch B] [--steps N] [--threads T]" >&2; exit 2 ;;
  esac
done

. scripts/bench_venv.sh

export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
cargo bench -q -p pedals-ml --bench step --no-run >/dev/null 2>&1 || cargo bench -p pedals-ml --bench step --no-run
out=$(mktemp)
bench() { cargo bench -q -p pedals-ml --bench step -- --layers "$layers" --batch "$batch" --threads "$threads" "$@" | tee -a "$out"; }
bench --mode exact --steps "$steps"
for isa in portable avx2 avx512-vnni; do
  bench --mode exact-cpu --isa "$isa" --steps "$steps" 2>/dev/null || echo "($isa: not on this CPU)" >&2
done
bench --mode exact-reference --steps $((steps > 20 ? 20 : steps)) --warmup 2
bench --mode float --steps "$steps"
"$venv/bin/python" scripts/bench_torch.py --layers "$layers" --batch "$batch" --steps "$steps" --threads "$threads" | tee -a "$out"

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
base = next(r for r in rows if r["impl"].startswith("pytorch"))
print(f"\n{'implementation':<34} {'ms/step':>9} {'samples/s':>11} {'peak MiB':>9} {'× PyTorch':>10}")
for r in rows:
    print(f"{r['impl']:<34} {r['median_ms']:>9.3f} {r['samples_per_s']:>11.0f} {r['peak_rss_mib']:>9.1f} {r['median_ms'] / base['median_ms']:>10.2f}")
PY
