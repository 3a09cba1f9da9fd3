#!/usr/bin/env bash
# Installs the system packages the tests need beyond Rust and Node.js: a Vulkan loader and
# Mesa's software Vulkan driver (lavapipe), so that burn's wgpu backend runs on machines
# without a GPU (CI among them) and the flex-vs-wgpu exact-mode test can run there; and a
# headless Chromium for the web app's browser test (market-cli/tests/it/ui.rs).
#
#   libvulkan1               the Vulkan loader (libvulkan.so.1)
#   mesa-vulkan-drivers      Mesa's Vulkan drivers, lavapipe (llvmpipe-based, CPU) among them
#   chromium-headless-shell  Chromium's headless shell, without the desktop browser's GTK
#                            and desktop services (about 20 packages, not 130)
#
# Debian/Ubuntu only (apt). Idempotent: does nothing when dpkg already lists both packages as
# installed. Versions are the distribution's (Debian 12 ships Mesa 22.3); exact mode does not
# depend on them, because integer results are the same bits on every driver.
#
# Needs root (CI runs as root). Without root, or without apt, it fails under CI=true and only
# warns elsewhere: the wgpu test then skips with a message on a developer machine.
set -euo pipefail

packages=(mesa-vulkan-drivers libvulkan1 chromium-headless-shell)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

cannot() {
  if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    echo "error: $1" >&2
    exit 1
  fi
  echo "warning: $1; the wgpu (Vulkan) and browser tests will be skipped on this machine" >&2
  exit 0
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  cannot "no dpkg/apt-get here: install a Vulkan loader and driver (e.g. Mesa's lavapipe) by hand"
fi

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: $(dpkg-query -W -f='${Package} ${Version}  ' "${packages[@]}")" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  cannot "${missing[*]} not installed and this is not root; run: sudo $0"
fi

echo "installing ${missing[*]} (Vulkan and lavapipe for the wgpu tests, headless Chromium for the browser test)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
for p in "${packages[@]}"; do
  installed "$p" || { echo "error: $p did not install" >&2; exit 1; }
done
echo "installed: $(dpkg-query -W -f='${Package} ${Version}  ' "${packages[@]}")" >&2
