# The README's two commands: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FLOOR_VENV := .venv-floor
PROCESSED := data/processed
REGISTRY := artifacts/cf/registry.json
HOST ?= 0.0.0.0
PORT ?= 8000
WORKERS ?= 1

.PHONY: install test test-floor fuzz serve demo lint format clean api-docs console-screenshot \
	time-to-first-answer

# pip prints what it downloads and installs: the first install takes minutes (torch, transformers)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the project and its dependencies into $(VENV) (several minutes the first time) ..."
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --progress-bar on -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# schemathesis --checks all over every operation of a live server (test model, admin token set);
# FUZZ_EXAMPLES bounds the examples per operation, FUZZ_SEED fixes the run
FUZZ_EXAMPLES ?= 40
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) \
		$(PY) -m pytest -q -s -m fuzz tests/service/test_fuzz_openapi.py

# Re-run the console's browser test and keep its screenshot as docs/console.png (the README's)
console-screenshot: $(STAMP)
	RECSYS_CONSOLE_SCREENSHOT=docs/console.png $(PY) -m pytest -q tests/service/test_console_browser.py

# The suite on the lowest versions pyproject.toml allows (constraints/floor.txt); not run by CI.
test-floor:
	test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -c constraints/floor.txt -e ".[dev]"
	$(FLOOR_VENV)/bin/python -m pytest -q tests

# Builds the demo data and model only when no current model exists, then serves it.
demo: $(STAMP)
	@if [ ! -f $(REGISTRY) ]; then \
		echo "No model registry at $(REGISTRY): building the demo data and model (minutes; one line per phase) ..."; \
		$(PY) -m recommender build --source demo --input data/raw/demo; \
	else echo "Model registry found at $(REGISTRY): skipping the demo build."; fi

serve: demo
	$(PY) -m uvicorn service.api:app --host $(HOST) --port $(PORT) --workers $(WORKERS)

# A fresh clone of this checkout, `make serve` in it, the time until /recommend of the demo's
# trainable user "1" answers with strategy cf; PASS/MISS against 6 minutes (README, "The two commands")
time-to-first-answer: $(STAMP)
	$(PY) scripts/time_to_first_answer.py

lint: $(STAMP)
	$(VENV)/bin/ruff check recommender service scripts tests
	$(VENV)/bin/ruff format --check recommender service scripts tests
	$(VENV)/bin/mypy recommender service

format: $(STAMP)
	$(VENV)/bin/ruff format recommender service scripts tests

api-docs: $(STAMP)
	$(PY) scripts/generate_api_docs.py --out docs/API.md

clean:
	rm -rf data/processed artifacts .pytest_cache
