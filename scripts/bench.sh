#!/usr/bin/env bash
# Side-by-side benchmark of one MLP training step: Pedals exact mode (burn flex), the
# plain-Rust reference, Pedals float mode when built, and PyTorch f32 on the CPU, in one run,
# with the same thread count. Results go to stdout as JSON lines plus a ratio table;
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

venv=.venv-bench
stamp=$(sha256sum scripts/requirements-bench.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "installing PyTorch into $venv (first run only)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-bench.txt
  echo "$stamp" > "$venv/.stamp"
fi

export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
cargo bench -q -p pedals-ml --bench step --no-run >/dev/null 2>&1 || cargo bench -p pedals-ml --bench step --no-run
out=$(mktemp)
for mode in exact exact-cpu exact-reference; do
  [ "$mode" = exact-reference ] && [ "$steps" -gt 20 ] && s=20 || s=$steps
  cargo bench -q -p pedals-ml --bench step -- --mode "$mode" --layers "$layers" --batch "$batch" --steps "$s" | tee -a "$out"
done
"$venv/bin/python" scripts/bench_torch.py --layers "$layers" --batch "$batch" --steps "$steps" --threads "$threads" | tee -a "$out"

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
base = next(r for r in rows if r["impl"].startswith("pytorch"))
print(f"\n{'implementation':<34} {'ms/step':>9} {'samples/s':>11} {'peak MiB':>9} {'× PyTorch':>10}")
for r in rows:
    print(f"{r['impl']:<34} {r['median_ms']:>9.3f} {r['samples_per_s']:>11.0f} {r['peak_rss_mib']:>9.1f} {r['median_ms'] / base['median_ms']:>10.2f}")
PY
