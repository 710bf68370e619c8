# The README's two commands: `make run` (demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench mutate install clean

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

bench: $(STAMP)
	$(BIN)/python -m bench

# Mutation testing of the modules listed in tests/mutate.py, each against its own tests;
# `make mutate MUTATE_ARGS=bridge/nats/subjects.py` runs one. See tests/MUTANTS.md.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutate $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mutmut mutants
