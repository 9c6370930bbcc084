# posguard: every entry point a user or CI needs. `make demo` and `make test` work on a fresh
# machine: they create .venv and install what they need (pip caches downloads in ~/.cache/pip).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_DIR := .demo
BENCH_DIR := .bench

.PHONY: install demo demo-replay test unit lint bench kafka-jars system-tools clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	POSGUARD_PURE_PYTHON=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The detection path, compiled in place by mypyc (the list is setup.py's COMPILED); again whenever
# one of its sources changes, since Python imports a stale extension before the edited .py.
# build_ext copies an unchanged module's extension with its old time, so all are touched after it.
# POSGUARD_PURE_PYTHON=1 removes the extensions instead, and so does a failed compilation.
COMPILED_SOURCES := $(shell sed -n 's/^    "\(.*\.py\)",$$/\1/p' setup.py)
COMPILE_STAMP := $(VENV)/.compiled$(if $(filter 1,$(POSGUARD_PURE_PYTHON)),-pure)

$(COMPILE_STAMP): $(STAMP) $(COMPILED_SOURCES)
	rm -f $(VENV)/.compiled $(VENV)/.compiled-pure
ifeq ($(POSGUARD_PURE_PYTHON),1)
	find streams models -name '*.so' -delete
else
	if $(BIN)/python setup.py --quiet build_ext --inplace; then \
		find streams models -name '*.so' -exec touch {} +; \
	else \
		find streams models -name '*.so' -delete; \
		echo "posguard: compiling the detection path failed (no C compiler or Python headers?);" \
			"it runs as plain Python, slower but the same" >&2; \
	fi
endif
	touch $@

install: $(COMPILE_STAMP)

# The whole product live: embedded broker, topics, worker, paced simulator. Ctrl-C stops it.
demo: $(COMPILE_STAMP)
	$(BIN)/posguard demo

# The same detection over files, scored against the simulator's labels.
demo-replay: $(COMPILE_STAMP)
	$(BIN)/posguard simulate --out-dir $(DEMO_DIR) --seed 7
	$(BIN)/posguard replay --transactions $(DEMO_DIR)/transactions.jsonl \
		--settlements $(DEMO_DIR)/settlements.jsonl --payouts $(DEMO_DIR)/payouts.jsonl \
		--config $(DEMO_DIR)/config.toml \
		--out $(DEMO_DIR)/alerts.jsonl --dead-letter $(DEMO_DIR)/deadletter.jsonl
	$(BIN)/posguard evaluate --data $(DEMO_DIR)
	@echo "alerts: $(DEMO_DIR)/alerts.jsonl   dead letters: $(DEMO_DIR)/deadletter.jsonl"

lint: $(STAMP)
	$(BIN)/ruff check streams models tests setup.py
	$(BIN)/ruff format --check streams models tests setup.py
	$(BIN)/mypy

unit: $(COMPILE_STAMP)
	$(BIN)/pytest -m "not integration and not browser"

# Apache Kafka's jars from Maven Central, cached in ~/.cache/posguard (and ~/.m2) for reuse.
kafka-jars:
	deploy/kafka/fetch.sh >/dev/null

# promtool, amtool, docker-compose, chromium + chromedriver from Debian's packages (if missing).
system-tools:
	deploy/install-tools.sh

test: $(COMPILE_STAMP) lint kafka-jars system-tools
	$(BIN)/pytest

bench: $(COMPILE_STAMP)
	$(BIN)/python -m tests.bench.bench_model --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_handbook --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_replay --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_stream --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_backlog --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_state --dir $(BENCH_DIR)
	$(BIN)/python -m tests.bench.bench_ids

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(BENCH_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
	rm -rf build *.egg-info
	find streams models -name '*.so' -delete
