#!/usr/bin/env bash
# Static analysis of contracts/src with slither, offline.
#   scripts/slither.sh [extra slither flags]
# Installs the pinned contracts/requirements-lint.txt into .venv-lint/ when missing or changed,
# lets slither drive `forge build` (the npm forge and the solc-js stand-in, see
# docs/decisions/0004-foundry-from-npm-with-solc-js.md) into a private output directory, so
# contracts/out and its ABIs are never cleaned, and fails on any high or medium finding that
# contracts/slither.triage.json does not list. Findings are explained in docs/security/slither.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv="$root/.venv-lint"
requirements="$root/contracts/requirements-lint.txt"

bin="$root/contracts/node_modules/.bin"
[ -x "$bin/forge" ] || { echo "error: $bin/forge is missing; run 'npm ci' in contracts/ first" >&2; exit 1; }

stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/slither" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$stamp" ]; then
  echo "installing $requirements into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$stamp" > "$venv/.requirements.sha256"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# crytic-compile runs `forge clean` and `forge build --force`; point both at $work.
cd "$root/contracts"
PATH="$bin:$PATH" FOUNDRY_OUT="$work/out" FOUNDRY_CACHE_PATH="$work/cache" \
  "$venv/bin/slither" . --config-file slither.config.json --fail-none --json "$work/results.json" "$@"

"$venv/bin/python" - "$work/results.json" slither.triage.json <<'PY'
import json
import sys

results = json.load(open(sys.argv[1]))
if not results.get("success"):
    sys.exit(f"error: slither failed: {results.get('error')}")
triaged = {(t["check"], t["location"]) for t in json.load(open(sys.argv[2]))["triaged"]}


def location(element):
    """`Contract.function(signature)` or `Contract.name`, independent of line numbers."""
    fields = element.get("type_specific_fields", {})
    parent = fields.get("parent")
    if element["type"] == "node":
        return location(parent)
    name = fields.get("signature", element["name"])
    return f"{location(parent)}.{name}" if parent else name


seen, open_findings = set(), []
for finding in results["results"].get("detectors", []):
    if finding["impact"] not in ("High", "Medium"):
        continue
    key = (finding["check"], location(finding["elements"][0]))
    seen.add(key)
    if key not in triaged:
        open_findings.append((finding["impact"], *key, finding["description"].strip()))

for check, where in sorted(triaged - seen):
    print(f"note: triage entry {check} at {where} matched nothing; remove it from slither.triage.json")
if open_findings:
    print(f"\n{len(open_findings)} untriaged high/medium finding(s):", file=sys.stderr)
    for impact, check, where, description in open_findings:
        print(f"  [{impact}] {check} at {where}\n    {description}", file=sys.stderr)
    print("Fix them, or judge them in docs/security/slither.md and list them in "
          "contracts/slither.triage.json.", file=sys.stderr)
    sys.exit(1)
print(f"slither: no untriaged high or medium findings ({len(seen)} triaged)")
PY
