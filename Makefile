# tinybin: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast test-all venv bench notebooks clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m tinybin demo

# the default suite, including the `wheel` test (installs a built wheel into a temporary venv)
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not wheel"

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_conv.py
	$(PY) benchmarks/bench_xnor.py

notebooks: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,notebooks]"
	$(PY) scripts/build_notebooks.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs
