#!/usr/bin/env bash
# Builds and tests the subgraph (docs/subgraph.md) offline: installs the pinned graph-cli and
# graph-ts from subgraph/package-lock.json, runs `graph codegen` and `graph build` (AssemblyScript
# to wasm), then the Node tests: manifest against the ABIs and schema, deployment file to
# networks.json, and the mappings run against events. Idempotent: it reinstalls only when the
# lockfile changed.
set -euo pipefail
cd "$(dirname "$0")/../subgraph"

command -v node >/dev/null 2>&1 || { echo "error: node is not installed; install Node.js 20.18 or newer" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "error: npm is not installed (it ships with Node.js)" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)' || {
  echo "error: Node.js $(node --version) is too old for graph-cli; install 20.18 or newer" >&2
  exit 1
}

lock=package-lock.json
stamp=node_modules/.pedals-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the pinned subgraph toolchain from subgraph/$lock" >&2
  # No package in the tree has install scripts today; none may download anything later.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# graph-cli would ask the npm registry for a newer version in the background.
export GRAPH_SKIP_NEW_VERSION_CHECK=true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for step in codegen build; do
  if ! node_modules/.bin/graph "$step" >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: graph $step failed" >&2
    exit 1
  fi
done
echo "graph build: subgraph/build/subgraph.yaml and its wasm mappings are ready" >&2
node --test --test-reporter=dot test/
