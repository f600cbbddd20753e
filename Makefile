# Two entry points: `make demo` (the main job, end to end) and `make test` (the whole suite).
# Each installs what it needs: Debian tools via scripts/install-system-deps, Python deps in .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck system-deps bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	bash scripts/install-system-deps

demo: system-deps $(STAMP)
	bash scripts/demo

test: system-deps $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup -q

bench: system-deps $(STAMP)
	$(BIN)/python bench/inventory_speed.py
	$(BIN)/python bench/db_update.py
	$(BIN)/python bench/match_speed.py
	$(BIN)/python bench/vuln_scan.py
	$(BIN)/python bench/version_compare.py
	$(BIN)/python bench/config_speed.py
	$(BIN)/python bench/config_compare.py
	$(BIN)/python bench/secret_scan.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
