# Sourced by the side-by-side benchmarks (scripts/bench.sh, scripts/bench_lm.sh): makes sure
# .venv-bench/ holds what scripts/requirements-bench.txt pins (PyTorch, transformers), installing
# it on first use or when the pins change, and sets $venv.
venv=.venv-bench
stamp=$(sha256sum scripts/requirements-bench.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "installing the pinned PyTorch and transformers into $venv (first run only)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-bench.txt
  echo "$stamp" > "$venv/.stamp"
fi
