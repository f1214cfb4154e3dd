# Set-up is idempotent: every target below creates the virtual environment first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup zoo data browser demo test lint bench bench-search bench-dense clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The zoo extra (ultralytics, AGPL; ~300 MB with opencv and polars, so not in `setup`): the dense
# networks of tests/test_dense_pricing.py (which skips without it) and benchmarks/dense_pricing.py.
zoo: setup
	$(BIN)/python -m pip install --quiet -e '.[zoo]'

# Fashion-MNIST for the proxies, from Debian (as root, or through sudo; skipped if already there).
data: $(FASHION_MNIST)/t10k-labels-idx1-ubyte.gz

$(FASHION_MNIST)/t10k-labels-idx1-ubyte.gz:
	$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist'

# Debian's chromium and its driver, for the dashboard's browser test (as root, or through sudo).
browser: /usr/bin/chromedriver

/usr/bin/chromedriver:
	$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver'

# The main job on the embedded default: a search on SQLite (nas.db here), a local Ray and the
# default accelerator, with the default proxy on Fashion-MNIST; prints the Pareto front.
demo: setup data
	$(BIN)/nas run docs/examples/edge-classifier.yaml --max-workers 2  # its 2 workers, even on a 1-CPU machine

# The store's contract tests also run on PostgreSQL: .ci/postgres starts Debian's server (as root
# or through sudo) and prints its URL; without one those tests skip, unless NAS_REQUIRE_POSTGRES=1.
test: setup data browser
	NAS_TEST_POSTGRES_URL="$${NAS_TEST_POSTGRES_URL:-$$(bash .ci/postgres | tail -n 1)}" $(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/ir_agreement.py --out docs/ir_agreement.md
	$(BIN)/python benchmarks/pricing_speed.py --out docs/pricing_speed.md
	$(BIN)/python benchmarks/calibrate.py --out docs/calibration_table.md
	$(BIN)/python benchmarks/proxy_ranking.py report --out docs/proxy_ranking.md
	$(BIN)/python benchmarks/predictor_calibration.py --out docs/predictor_calibration.md
	$(BIN)/python benchmarks/truth_fidelity.py report --out docs/truth_fidelity.md
	$(BIN)/python benchmarks/end_to_end.py report --out docs/end_to_end.md
	$(BIN)/python benchmarks/codesign_example.py --db sqlite:////tmp/codesign.db --out docs/codesign_front.md
	$(BIN)/python benchmarks/search_overhead.py --out docs/search_overhead.md
	$(BIN)/python benchmarks/pareto_query_speed.py --workdir /tmp --out docs/pareto_query_speed.md
	$(BIN)/python benchmarks/api_pareto_latency.py --workdir /tmp --out docs/api_pareto_latency.md
	$(BIN)/python benchmarks/api_during_search.py --out docs/api_during_search.md
	$(BIN)/python benchmarks/tenant_requests.py --out docs/tenant_requests.md

# The chip model held against the zoo's dense networks (about 15 minutes on two cores).
bench-dense: zoo
	$(BIN)/python benchmarks/dense_pricing.py --out docs/dense_pricing.md

# The samplers' efficiency: about an hour on two cores (runs are resumable in WORKDIR).
WORKDIR ?= /tmp/search_efficiency
bench-search: setup
	$(BIN)/python benchmarks/search_efficiency.py run --bench metaformer --workdir $(WORKDIR)
	$(BIN)/python benchmarks/search_efficiency.py run --bench macro --workdir $(WORKDIR)
	$(BIN)/python benchmarks/search_efficiency.py report --workdir $(WORKDIR) --out docs/search_efficiency.md
	cp $(WORKDIR)/*.csv benchmarks/results/search_efficiency/

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
