# `make demo`: set everything up, index the sample photos (and PHOTOS=DIR when given) with
# the embedded default model, and serve the search page (PORT=8000, HOST=127.0.0.1).
# `make test`: set everything up and run the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch, pinned: an open range pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

PORT ?= 8000
HOST ?= 127.0.0.1

demo: setup
	$(BIN)/python -m service.demo --host $(HOST) --port $(PORT) $(if $(PHOTOS),--photos "$(PHOTOS)")

# The Ray tests run in a process of their own: a Ray driver's threads beside the JVM of
# the other tests' Lucene calls crashed the JVM (SIGSEGV in IndexWriter.close).
test: setup
	$(BIN)/python -m pytest -q -m "not ray"
	$(BIN)/python -m pytest -q -m ray

lint: setup
	$(BIN)/ruff check model indexer service bench tests
	$(BIN)/ruff format --check model indexer service bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) cache
