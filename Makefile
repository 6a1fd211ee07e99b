# Two set-up commands (README): `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv/ with the project installed when missing.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

.PHONY: install demo test test-slow lint bench
install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tubelet demo

test: $(STAMP)
	$(VENV)/bin/ruff check tubelet tests benchmarks
	$(VENV)/bin/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -m slow -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/model_speed.py
