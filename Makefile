# streamrules: the commands of development, tests and CI. `make` (or `make help`) lists them.
#
# `make test` is the README's test command: it installs, starts a Kafka broker of its own
# (a fresh one, on $(TEST_BROKER_PORT), data in .kafka/test), runs every test, and stops
# the broker again, also when tests fail.

PYTHON ?= python
STREAMRULES ?= $(PYTHON) -m streamrules
PYTEST_ARGS ?=
TEST_BROKER_PORT ?= 19092
TEST_BROKER_CONTROLLER_PORT ?= 19093
TEST_BROKER_DIR ?= .kafka/test
# The optional compiled build (`make compiled`): a copy of the package with the modules of
# streamrules/build.py compiled by mypyc next to their sources. Use it with
# PYTHONPATH=$(COMPILED_DIR) PYTHONSAFEPATH=1 (so that the current directory's pure-Python
# package does not come first, in subprocesses too).
COMPILED_DIR ?= build/compiled
# The tests that `make test-compiled` runs on it: the engine, facts, pipeline, replay.
COMPILED_TESTS ?= tests/unit/rete tests/unit/facts tests/unit/test_pipeline.py \
	tests/unit/test_pipeline_rules.py tests/unit/test_replay_cli.py \
	tests/unit/test_testing_driver.py tests/unit/test_build.py tests/property
TEST_BROKER = --data-dir $(TEST_BROKER_DIR) --port $(TEST_BROKER_PORT) \
	--controller-port $(TEST_BROKER_CONTROLLER_PORT)

.DEFAULT_GOAL := help
.PHONY: help install test test-unit compiled test-compiled alerts lint typecheck docs broker-start \
	broker-stop demo bench-install bench bench-service bench-builds soak compose-images compose-test

help: ## list the targets
	@echo "usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## pip install -e '.[dev]' and fetch the Kafka jars (Maven; no-op when cached)
	$(PYTHON) -m pip install -q -e '.[dev]'
	$(STREAMRULES) broker fetch

test: install ## install (+ Prometheus from apt), start a test broker, run all tests, stop it
	-@bash tools/install-prometheus.sh
	@set -u; \
	broker=0; \
	if $(STREAMRULES) broker stop $(TEST_BROKER) >/dev/null && rm -rf $(TEST_BROKER_DIR) && \
	   $(STREAMRULES) broker start $(TEST_BROKER); then \
		broker=1; \
	elif case "$${CI:-}" in true|TRUE|True|1|yes) true;; *) false;; esac; then \
		echo "make test: CI=true and the Kafka broker did not start" >&2; exit 1; \
	else \
		echo "make test: no broker: integration tests will start their own or be skipped" >&2; \
	fi; \
	trap '[ $$broker = 1 ] && $(STREAMRULES) broker stop $(TEST_BROKER)' EXIT; \
	kafka=""; [ $$broker = 1 ] && kafka="--kafka-bootstrap=127.0.0.1:$(TEST_BROKER_PORT)"; \
	$(PYTHON) -m pytest $$kafka $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make test: pytest collected no tests" >&2; rc=0; fi; \
	exit $$rc

test-unit: ## the tests that need no broker (everything but tests/integration)
	@$(PYTHON) -m pytest -m "not integration" --ignore=tests/integration $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make test-unit: pytest collected no tests" >&2; rc=0; fi; \
	exit $$rc

compiled: ## the optional compiled build (mypyc; needs gcc) in build/compiled: see streamrules/build.py
	rm -rf $(COMPILED_DIR) build/compiled-temp
	mkdir -p $(COMPILED_DIR)
	cp -r streamrules topics $(COMPILED_DIR)/  # (the package reads ../topics)
	find $(COMPILED_DIR) -name __pycache__ -prune -exec rm -rf {} +
	STREAMRULES_COMPILE=1 $(PYTHON) setup.py -q build_ext --build-lib $(COMPILED_DIR) \
		--build-temp build/compiled-temp
	PYTHONPATH=$(COMPILED_DIR) PYTHONSAFEPATH=1 $(PYTHON) -m streamrules --version

test-compiled: compiled ## the engine, facts, pipeline and replay tests on the compiled build
	@PYTHONPATH=$(COMPILED_DIR) PYTHONSAFEPATH=1 $(PYTHON) -m pytest --expect-compiled \
		$(COMPILED_TESTS) \
		$(PYTEST_ARGS)

alerts: ## check the alert rules and run their unit tests (promtool; `make test` runs them too)
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

lint: ## ruff check and ruff format --check
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck: ## mypy (strict) on streamrules/ and tests/
	$(PYTHON) -m mypy

docs: ## the documentation site (MkDocs) in build/site; strict: a broken link or anchor fails
	$(PYTHON) -m mkdocs build --strict

broker-start: ## start the local Kafka broker (127.0.0.1:9092, data in .kafka/)
	$(STREAMRULES) broker start

broker-stop: ## stop the local Kafka broker
	$(STREAMRULES) broker stop

demo: install ## install, then `streamrules demo` (local broker, topics, stream, processor)
	$(STREAMRULES) demo

compose-images: ## docker-compose set-up: Docker, stand-in images where no registry answers, wheels
	PYTHON=$(PYTHON) bash tools/compose/setup.sh

compose-test: ## the docker-compose stack for real: up, decisions checked against replay, down
	@services=$$(PYTHON=$(PYTHON) bash tools/compose/setup.sh --print-services) || exit $$?; \
	STREAMRULES_TEST_COMPOSE=1 STREAMRULES_TEST_COMPOSE_SERVICES="$$services" \
		$(PYTHON) -m pytest tests/compose $(PYTEST_ARGS)

bench-install: ## install the peer engines for the benchmarks (experta needs frozendict>=2 over its pin)
	$(PYTHON) -m pip install -q -e '.[bench]'
	$(PYTHON) -m pip install -q --no-deps 'frozendict>=2'

bench: bench-install ## the benchmarks, streamrules against its peers in one run: python -m benchmarks
	$(PYTHON) -m benchmarks

bench-service: install ## the Kafka service against the raw Kafka ceiling, live latency (private broker)
	$(PYTHON) -m pip install -q -e '.[fast]'
	$(PYTHON) -m benchmarks.service

bench-builds: install compiled ## run on the pure-Python and the compiled build against the Kafka ceiling
	$(PYTHON) -m pip install -q -e '.[fast]'
	$(PYTHON) -m benchmarks.builds

soak: install ## the replay soak (1,000,000 orders; facts live and RSS per simulated hour)
	$(PYTHON) -m benchmarks.soak
