# The course's two commands:  `make lab` (start the course) and `make test` (run every check).
# Both create .venv and install the pinned stack on first use; later runs reuse it and only
# reinstall when pyproject.toml or requirements/constraints.txt changed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.diffedu-installed
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: help install lab test notebooks clean

help:
	@echo "make lab        create .venv if missing, install, open JupyterLab on notebooks/"
	@echo "make test       create .venv if missing, install, run unit, symbolic and notebook tests"
	@echo "make notebooks  re-execute every notebook in place (stored outputs for nbval)"
	@echo "make clean      remove .venv"

$(STAMP): pyproject.toml requirements/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "diffedu needs Python 3.10 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=/path/to/python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[course,test]"
	@touch $@

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# The browser test (tests/browser) needs Debian's chromium: installed with apt-get on first use
# (quick when present); DIFFEDU_REQUIRE_BROWSER=1 makes a missing browser a failure, not a skip.
test: $(STAMP)
	@sh tests/browser/install_chromium.sh
	DIFFEDU_REQUIRE_BROWSER=1 $(BIN)/python -m pytest tests $(if $(NOTEBOOKS),--nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks)

# Rebuild every notebook from its source in notebooks/src/ and execute it on the CPU with fixed
# seeds; the stored outputs are what nbval (strict) compares against in `make test`.
notebooks: $(STAMP)
	@for src in notebooks/src/*.py; do \
	  nb=notebooks/$$(basename $${src%.py}).ipynb; echo "building $$nb"; \
	  CUDA_VISIBLE_DEVICES= PYTHONHASHSEED=0 $(BIN)/jupytext --to ipynb --execute --output $$nb $$src || exit 1; \
	done

clean:
	rm -rf $(VENV)
