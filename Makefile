# The two set-up commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PIP    := $(VENV)/bin/pip
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
OUT    ?= outputs/demo

.PHONY: demo test venv clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch is pinned in constraints.txt so that the CPU build installs from local disk.
$(STAMP): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $(STAMP)

$(DEVSTAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $(DEVSTAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m mixdvae.demo --out $(OUT)

test: $(DEVSTAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) outputs .pytest_cache
