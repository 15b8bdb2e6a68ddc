# The two set-up commands the README gives: `make run` and `make test`.
# Both build the environment in .venv at the repository root.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test venv lint bench chromium gpu-validate fuzz mutation

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

# Start the dashboard on the bundled profiles (no network, no GPU needed).
run: venv
	$(VENV)/bin/streamlit run app.py --server.headless true --browser.gatherUsageStats false

# Debian's Chromium drives the real-browser test (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' (the browser test will be skipped)"; fi; }

# Run the whole test suite.
test: venv chromium
	$(VENV)/bin/python -m ruff check planner profiler app.py dashboard tests benchmarks scripts
	$(VENV)/bin/python -m pytest -n 2 -q

# The large-budget fuzz of the command line (docs/robustness.md); CI runs a fixed sample of it.
fuzz: venv
	$(VENV)/bin/python scripts/fuzz_cli.py --runs 21000 --jobs $$(nproc)

# Mutation testing of planner/ (docs/mutation.md), one module at a time on 2 CPUs; results stay under
# .mutation/. make mutation MODULES="kv slo" ARGS="--fresh"
MODULES ?=
mutation: venv
	$(VENV)/bin/python scripts/mutation.py $(MODULES) $(ARGS)

lint: venv
	$(VENV)/bin/python -m ruff check .

# Benchmarks (docs/benchmarks.md) in their own environment .venv-bench: requirements.txt, then
# requirements-bench.txt with --no-deps (llm-analysis 0.2.2 declares transformers<5; see that file).
bench:
	test -x .venv-bench/bin/python || python3 -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r requirements.txt
	.venv-bench/bin/pip install --quiet --no-deps -r requirements-bench.txt
	.venv-bench/bin/python benchmarks/bench_sweep.py
	.venv-bench/bin/python benchmarks/bench_llm_analysis.py
	.venv-bench/bin/python benchmarks/bench_slo.py

# The on-GPU validation run (docs/profiling.md): the GPU machine's own Python, which needs torch
# (CUDA), transformers, numpy and pandas and installs nothing. make gpu-validate ARGS="--budget-s 300"
GPU_PY ?= python3
gpu-validate:
	$(GPU_PY) scripts/gpu_validate.py $(ARGS)
