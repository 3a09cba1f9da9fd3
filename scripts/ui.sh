#!/usr/bin/env bash
# Builds the web app (docs/web-app.md) into ui/dist, which the pedals binary embeds
# (crates/ui): installs the pinned toolchain from ui/package-lock.json (TypeScript and Vite),
# type-checks, and bundles. Idempotent: it reinstalls only when the lockfile changed, and
# rebuilds in about a second. Run it before building pedals; scripts/setup.sh does.
set -euo pipefail
cd "$(dirname "$0")/../ui"

command -v node >/dev/null 2>&1 || { echo "error: node is not installed; install Node.js 20.19 or newer" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || {
  echo "error: Node.js $(node --version) is too old for Vite; install 20.19 or newer" >&2
  exit 1
}

lock=package-lock.json
stamp=node_modules/.pedals-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the pinned web app toolchain from ui/$lock" >&2
  # Vite's native parts come as platform packages; no install script needs to run.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

node_modules/.bin/tsc --noEmit
node_modules/.bin/vite build --logLevel warn
echo "web app built: ui/dist ($(find dist -type f | wc -l) files), embedded by the next build of pedals" >&2
