# hpcannotate developer tasks. `make setup && make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint data docs bench demo clean

$(BIN)/hpcannotate: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("hpcannotate needs Python >= 3.10") if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/hpcannotate  ## virtualenv + editable install + test dependencies

test: setup  ## every test, the slow real-world suites included (what CI runs)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup  ## skip the slow real-world suites
	$(BIN)/pytest -m 'not slow' $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench

data: setup  ## rewrite the compiled JSON twins of src/hpcannotate/data/*.yaml (after editing a YAML)
	$(BIN)/python -m hpcannotate.model.datafiles

docs: setup  ## regenerate docs/keys.md from the key catalogue
	$(BIN)/hpcannotate keys --markdown > docs/keys.md

bench: setup  ## speed and memory figures, each printed side by side with its baseline
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/infer_corpus.py --check
	$(BIN)/python bench/build_overhead.py
	$(BIN)/python bench/retrofit.py --check
	$(BIN)/python bench/match.py
	$(BIN)/python bench/probe.py
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/discover.py
	$(BIN)/python bench/site_scale.py

STORE := --root build/store/root --runroot build/store/runroot --storage-driver vfs

demo: setup  ## system packages, then build recipes/gromacs (debian variant) and show its annotations
	bash .ci/system-packages.sh
	$(BIN)/hpcannotate validate examples/metahub-gromacs-mpich.yaml
	$(BIN)/hpcannotate infer $(VENV)/easybuild/easyconfigs/g/GROMACS/GROMACS-2023.3-foss-2023a.eb --target zen3
	$(BIN)/hpcannotate build recipes/gromacs $(STORE)
	$(BIN)/hpcannotate check oci:build/gromacs/oci:2022.5
	-$(BIN)/hpcannotate match oci:build/gromacs/oci:2022.5

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis
