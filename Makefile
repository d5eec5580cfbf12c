# The two set-up commands: `make run` and `make test`. Both create .venv and install the project on first use;
# nothing is needed on the machine but Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run demo test lint

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("StayPulse needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/staypulse serve --host 127.0.0.1 --port 8000

demo: $(INSTALLED)
	$(BIN)/staypulse demo --host 127.0.0.1 --port 8000

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
