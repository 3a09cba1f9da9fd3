#!/usr/bin/env bash
# Fails when line coverage of any file in contracts/src drops below the threshold (default 95).
#   scripts/coverage.sh [threshold]
set -euo pipefail
cd "$(dirname "$0")/../contracts"
threshold=${1:-95}
report=$(./node_modules/.bin/forge coverage --report summary --no-match-path 'test/invariants/*' 2>&1) || {
  echo "$report" >&2
  exit 1
}
echo "$report" | grep -E '^\| (File|src/)' || true
echo "$report" | awk -v min="$threshold" -F'|' '
  $2 ~ /src\// && $2 !~ /interfaces|libraries/ {
    file = $2; gsub(/ /, "", file)
    split($3, parts, "%"); pct = parts[1] + 0
    if (pct < min) { printf "error: %s has %.2f%% line coverage, below %s%%\n", file, pct, min; bad = 1 }
    seen++
  }
  END {
    if (!seen) { print "error: no coverage rows for contracts/src"; exit 1 }
    exit bad
  }'
echo "line coverage of contracts/src is at or above ${threshold}%"
