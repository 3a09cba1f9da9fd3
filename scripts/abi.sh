#!/usr/bin/env bash
# Keeps the ABIs that crates/chain compiles its bindings from in step with the contracts.
#   scripts/abi.sh sync    copy the ABIs from contracts/out (after `forge build`)
#   scripts/abi.sh check   fail if the committed ABIs differ from contracts/out
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
contracts=(JobMarket StakeManager GameRouter DisputeGame LmDisputeGame DataAvailability AuditPool SpanPayments SpanDisputeGame)
status=0
for c in "${contracts[@]}"; do
  artifact="contracts/out/$c.sol/$c.json"
  committed="crates/chain/abi/$c.json"
  [ -f "$artifact" ] || { echo "error: $artifact is missing; run 'make contracts' first" >&2; exit 1; }
  fresh=$(node -e 'const a=require(process.argv[1]); process.stdout.write(JSON.stringify({abi:a.abi},null,2)+"\n")' "$PWD/$artifact")
  case "$mode" in
    sync) printf '%s' "$fresh" > "$committed" ;;
    check)
      if ! diff -q <(printf '%s' "$fresh") "$committed" >/dev/null 2>&1; then
        echo "error: $committed differs from the compiled contract; run 'scripts/abi.sh sync' and commit" >&2
        status=1
      fi ;;
    *) echo "usage: scripts/abi.sh sync|check" >&2; exit 2 ;;
  esac
done
[ "$status" = 0 ] && [ "$mode" = check ] && echo "ABIs in crates/chain/abi match contracts/out"
exit "$status"
