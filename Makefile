# Quick start: `make demo` and `make test`. Both install into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test lint bench clean

# torch is pinned in the gpu extra: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,gpu]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cfspec lint specs/
	$(BIN)/cfspec compile specs/ -o $(OUT)
	@echo "--- the fixtures in specs/invalid/ are meant to fail; one of them:"
	-$(BIN)/cfspec lint specs/invalid/cycle.scm
	@echo "pairs: $(OUT)/pairs.jsonl"

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
	$(BIN)/ruff check cfspec cli.py tests benchmarks
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check cfspec cli.py tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/lint_bench.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
