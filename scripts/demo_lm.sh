#!/usr/bin/env bash
# `make demo-lm`: a language model's batch job through the market, as a requester runs it.
# Starts a devnet (anvil with every contract, a seeding peer, a worker, a validator) in a
# temporary folder, posts examples/tiny-lm-job.toml (a Hugging Face checkpoint made by
# scripts/lm_fixtures.py, quantized to exact mode as it is posted, and six prompts), follows
# it until the worker is paid, fetches the completions, checks them against the worker's trace,
# re-runs every chunk here and compares the bytes, prints them, and stops the devnet.
# `make demo-finetune` (`scripts/demo_lm.sh finetune`) does the same with
# examples/tiny-finetune-job.toml: the adapter is saved for peft, four steps are re-executed
# here from the worker's checkpoints, and the validator's log shows the steps it re-executed.
# PEDALS_DEVNET_PORT picks anvil's port (8545 by default).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build ${CARGO_FLAGS:-} -p pedals
pedals="$PWD/${CARGO_TARGET_DIR:-target}/debug/pedals"
dir=$(mktemp -d)
trap '"$pedals" devnet down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

"$pedals" devnet up --dir "$dir" --port "${PEDALS_DEVNET_PORT:-8545}"
eval "$("$pedals" devnet env --dir "$dir")"
export PEDALS_LOG=${PEDALS_LOG:-warn} PEDALS_REQUESTER_DIR="$dir/requester"

kind=${1:-generate}
case "$kind" in
generate) job=examples/tiny-lm-job.toml ;;
finetune) job=examples/tiny-finetune-job.toml ;;
*) echo "usage: $0 [generate|finetune]" >&2; exit 2 ;;
esac
posted=$("$pedals" job post "$job" --json)
id=$(sed -E 's/.*"jobId":([0-9]+).*/\1/' <<<"$posted")
echo "posted job $id; following it until the worker is paid"
"$pedals" job watch "$id"
if [ "$kind" = finetune ]; then
  "$pedals" job result "$id" --recheck 4 --out "$dir/adapter"
  echo
  echo "the adapter (Hugging Face peft's format, and the final state):"
  ls -l "$dir/adapter"
  echo
  echo "the devnet's validator re-executed sampled steps of the job within its window:"
  "$pedals" devnet logs validator --dir "$dir" --lines 400 | grep -E "re-executing|reproduce" | sed 's/^/  /' || true
else
  "$pedals" job result "$id" --recheck 3 --out "$dir/completions.jsonl"
  echo
  echo "the completions (one JSON line per prompt):"
  cat "$dir/completions.jsonl"
fi
