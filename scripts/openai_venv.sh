#!/usr/bin/env bash
# Makes sure .venv-openai/ holds the OpenAI Python client that scripts/requirements-openai.txt
# pins, installing it on first use or when the pins change. `make test` runs it; the
# split-inference test (market-cli/tests/it/swarm.rs) drives `pedals gateway` with this client.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-openai
stamp=$(sha256sum scripts/requirements-openai.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "installing the pinned OpenAI Python client into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-openai.txt
  echo "$stamp" > "$venv/.stamp"
fi
