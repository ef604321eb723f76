# Quick start: `make demo` and `make test`. Both install into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test lint bench clean vscode docs install-check

# torch is pinned in the gpu extra: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,gpu]'
	touch $(STAMP)

# The whole pipeline on the bundled specs, with the embedded tiny models on the CPU. Their
# weights are random, so images are noise and CLIP scores meaningless: the gates are opened to
# let every pair through to the dataset. With real models, drop the --min-* flags.
demo: $(STAMP)
	$(BIN)/cfspec lint specs/
	@echo "--- the fixtures in specs/invalid/ are meant to fail (exit 1); one of them:"
	$(BIN)/cfspec lint specs/invalid/cycle.scm; test $$? -eq 1
	HF_HUB_OFFLINE=1 $(BIN)/cfspec run specs/ -o $(OUT) --model tiny --clip-model tiny \
		--seeds 2 --steps 6 --height 64 --width 64 --batch-pairs 4 \
		--min-clip 0 --min-directional -1 --min-image-similarity -1
	@echo "report: $(OUT)/report.html"

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
	$(BIN)/ruff check cfspec cli.py tests benchmarks
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site
	$(BIN)/python .ci/install_check.py

# The installs users make: a wheel in new venvs (no extras, then each extra), every command run
# with an empty HOME and TMPDIR (about 3 minutes; pip's cache makes the second run faster).
install-check: $(STAMP)
	$(BIN)/python .ci/install_check.py

# The docs site (mkdocs.yml, docs/) into site/; `$(BIN)/mkdocs serve` shows it while you edit.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check cfspec cli.py tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/lint_bench.py

# The VS Code extension's node modules (tests/test_vscode_grammar.py installs them if missing).
vscode:
	cd editors/vscode && npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
