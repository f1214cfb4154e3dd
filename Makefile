# Set-up is idempotent: every target below creates the virtual environment first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default: sample, build, lower and size networks of the default space.
demo: setup
	$(BIN)/nas space list
	$(BIN)/nas space sample metaformer --n 5 --seed 0 --build

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/ir_agreement.py --out docs/ir_agreement.md
	$(BIN)/python benchmarks/pricing_speed.py --out docs/pricing_speed.md
	$(BIN)/python benchmarks/calibrate.py --check --out docs/calibration_table.md

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
