# Two commands do everything on a fresh machine:
#   make demo   set up .venv, then make a small dataset, train, evaluate and write a report
#   make test   set up .venv, then run the test suite
PY ?= python3
VENV := .venv
# The CPU wheel. On a CUDA machine, install your torch into .venv first (or set TORCH=...): an
# already importable torch is kept.
TORCH ?= torch==2.13.0

.PHONY: setup test demo clean

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/python -m pip install -q "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest

demo: $(VENV)/.installed
	$(VENV)/bin/ssl3d demo

clean:
	rm -rf $(VENV) build *.egg-info
