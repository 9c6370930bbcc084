# posguard: every entry point a user or CI needs. `make demo` and `make test` work on a fresh
# machine: they create .venv and install what they need (pip caches downloads in ~/.cache/pip).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_DIR := .demo
BENCH_DIR := .bench

.PHONY: install demo demo-replay test unit lint bench kafka-jars system-tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole product live: embedded broker, topics, worker, paced simulator. Ctrl-C stops it.
demo: $(STAMP)
	$(BIN)/posguard demo

# The same detection over files, scored against the simulator's labels.
demo-replay: $(STAMP)
	$(BIN)/posguard simulate --out-dir $(DEMO_DIR) --seed 7
	$(BIN)/posguard replay --transactions $(DEMO_DIR)/transactions.jsonl \
		--settlements $(DEMO_DIR)/settlements.jsonl --config $(DEMO_DIR)/config.toml \
		--out $(DEMO_DIR)/alerts.jsonl --dead-letter $(DEMO_DIR)/deadletter.jsonl
	$(BIN)/posguard evaluate --data $(DEMO_DIR)
	@echo "alerts: $(DEMO_DIR)/alerts.jsonl   dead letters: $(DEMO_DIR)/deadletter.jsonl"

lint: $(STAMP)
	$(BIN)/ruff check streams models tests
	$(BIN)/ruff format --check streams models tests
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not browser"

# Apache Kafka's jars from Maven Central, cached in ~/.cache/posguard (and ~/.m2) for reuse.
kafka-jars:
	deploy/kafka/fetch.sh >/dev/null

# promtool, amtool, docker-compose, chromium + chromedriver from Debian's packages (if missing).
system-tools:
	deploy/install-tools.sh

test: $(STAMP) lint kafka-jars system-tools
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_model --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_replay --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_stream --dir $(BENCH_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(BENCH_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
