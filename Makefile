# The course's two commands:  `make lab` (start the course) and `make test` (run every check).
# Both create .venv and install the pinned stack on first use; later runs reuse it and only
# reinstall when pyproject.toml or requirements/constraints.txt changed.

PYTHON ?= python3
VENV   ?= .venv
# Where pip looks for torch besides PyPI: empty for PyPI's default build (CUDA on Linux, about 5 GB with its
# libraries); https://download.pytorch.org/whl/cpu for the CPU-only wheel (about 1.4 GB in all);
# https://download.pytorch.org/whl/cu126 (or your CUDA) for a GPU build.  The pin (requirements/constraints.txt)
# stays the same: the CPU index's 2.13.0+cpu satisfies torch==2.13.0.
TORCH_INDEX ?=
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.diffedu-installed
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: help install lab test notebooks clean

help:
	@echo "make lab        create .venv if missing, install, open JupyterLab on notebooks/"
	@echo "make test       create .venv if missing, install, run unit, symbolic and notebook tests"
	@echo "make notebooks  re-execute every notebook in place (stored outputs for nbval)"
	@echo "make clean      remove .venv"

# the course's kernel, by name: JupyterLab (this one or another) finds "Python 3 (diffedu)" for the notebooks
KERNEL := diffedu

$(STAMP): pyproject.toml requirements/constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "diffedu needs Python 3.10 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=/path/to/python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -c requirements/constraints.txt -e ".[course,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (diffedu)" > /dev/null
	@touch $@

install: $(STAMP)

# .venv keeps the Python it was made with: say so when PYTHON names another one
lab: $(STAMP)
	@want=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	 have=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	 if [ "$$want" != "$$have" ]; then \
	   echo "make lab: $(VENV) was made with Python $$have, but PYTHON=$(PYTHON) is $$want; rebuild it with: make clean && make lab PYTHON=$(PYTHON)" >&2; exit 1; fi
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# The browser test (tests/browser) needs a Chromium: install_chromium.sh finds one, or installs the system
# package where it can (root and apt-get; it says so first).  Without one the browser test is skipped with a
# loud line at the end; DIFFEDU_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
test: $(STAMP)
	@sh tests/browser/install_chromium.sh || echo "make test: no Chromium; every other test runs, tests/browser is skipped (or fails with DIFFEDU_REQUIRE_BROWSER=1)"
	$(BIN)/python -m pytest tests $(if $(NOTEBOOKS),--nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks)

# Rebuild every notebook from its source in notebooks/src/ and execute it on the CPU with fixed
# seeds; the stored outputs are what nbval (strict) compares against in `make test`.
notebooks: $(STAMP)
	@for src in notebooks/src/*.py; do \
	  nb=notebooks/$$(basename $${src%.py}).ipynb; echo "building $$nb"; \
	  CUDA_VISIBLE_DEVICES= PYTHONHASHSEED=0 $(BIN)/jupytext --to ipynb --execute --output $$nb $$src || exit 1; \
	done

clean:
	rm -rf $(VENV)
