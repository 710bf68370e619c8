# The README's two commands: `make run` (demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

HA_VENV := .venv-ha
HA_REQUIREMENTS := tests/homeassistant/requirements-ha.txt

.PHONY: run test test-ha bench mutate docs install clean

# A failed venv (Debian without python3-venv leaves one with no pip) is removed, so the next
# `make` tries again instead of finding $(BIN)/python and skipping this step.
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  echo "make: '$(PYTHON) -m venv' failed (removed $(VENV)); on Debian/Ubuntu: sudo apt install python3-venv" >&2; \
	  exit 1; }
	@$(BIN)/pip install --quiet --upgrade pip || { \
	  rm -rf $(VENV); \
	  echo "make: upgrading pip in $(VENV) failed (removed it); is PyPI reachable?" >&2; \
	  exit 1; }

# Reinstall only when the project's own metadata changes.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,emu]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/bridge demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The slow test against a real Home Assistant, in a venv of its own (installing it takes ~3.5 min here).
$(HA_VENV)/.installed: $(HA_REQUIREMENTS)
	$(PYTHON) -m venv $(HA_VENV)
	$(HA_VENV)/bin/pip install --quiet -r $(HA_REQUIREMENTS)
	touch $@

test-ha: $(STAMP) $(HA_VENV)/.installed
	HA_PYTHON=$(abspath $(HA_VENV))/bin/python $(BIN)/python -m pytest tests/homeassistant/real_home_assistant.py $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# The docs site (docs/, mkdocs.yml) into site/; --strict fails on a broken link or anchor.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Mutation testing of the modules listed in tests/mutate.py, each against its own tests;
# `make mutate MUTATE_ARGS=bridge/nats/subjects.py` runs one. See tests/MUTANTS.md.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutate $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) $(HA_VENV) build site *.egg-info .pytest_cache .hypothesis .mutmut mutants
