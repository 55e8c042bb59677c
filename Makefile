# Two entry points for a fresh machine (see README):
#   make run   - set up .venv and ingest the sample drafts in raw/ into processed/
#   make test  - set up .venv and run the test suite
#   make score - score the pipeline against the gold in the repository (policy-pipeline score)
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

.PHONY: setup run test bench bench-quick score
setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/policy-pipeline ingest

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# Per-document and overall F1 of the seeds (per format), genre drafts and real documents;
# `make score V=-v` lists the misses.
score: $(STAMP)
	$(VENV)/bin/policy-pipeline score $(V)

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py

bench-quick: $(STAMP)
	$(VENV)/bin/python bench/run.py --quick
