# Targets a newcomer can guess: run, test, lint, infra-up, infra-down, bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: help install run test lint unit format bench bench-fanout bench-e2e bench-read bench-write bench-merge bench-idle bench-processors bench-partitioned bench-streams soak clean up down infra-up infra-down infra-status

help:
	@echo "make run      run feedcore embedded on 127.0.0.1:8000 (nothing is persisted)"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make lint     ruff, ruff format --check, mypy --strict, import contracts"
	@echo "make unit     the unit tests only"
	@echo "make infra-up / infra-down / infra-status"
	@echo "             PostgreSQL, Redis and Kafka on 127.0.0.1, without Docker"
	@echo "make format   format the code with ruff"
	@echo "make bench    every benchmark below, and reads on the embedded server; wrk is installed from Debian"
	@echo "             packages if missing"
	@echo "make bench-fanout  fan-out into PostgreSQL at 1k/10k/100k followers, beside raw insert rates"
	@echo "make bench-e2e     post -> follower's feed latency through Kafka at 500 posts/s; processor pace"
	@echo "make bench-read    feed reads on PostgreSQL + Redis at 32 and 128 connections, beside a one-Redis-read ceiling"
	@echo "make bench-write   durable posts on the whole stack at 32 and 128 connections, beside a one-INSERT ceiling"
	@echo "make bench-idle    CPU of a server and a processor with no traffic"
	@echo "make bench-merge   what merging celebrities' posts at read time adds to a feed read"
	@echo "make bench-processors  fan-out over a backlog with 1, 2 and 3 processors in one group"
	@echo "make bench-partitioned feed_entries as one table against 16 hash partitions by user"
	@echo "make bench-streams 1,000 live feed streams: post -> stream latency, and their idle CPU"
	@echo "make soak     the real stack under load while faults are injected, checked against an oracle"
	@echo "             (MINUTES=20 by default; SEED=N replays a run); it starts services of its own"
	@echo "make up       the whole stack in Docker (docker/compose.yaml; needs a Docker engine and FEEDCORE_JWT_SECRET)"
	@echo "make down     stop the Docker stack (its volumes are kept)"

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "feedcore needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

lint: install
	$(VENV)/bin/ruff check src tests bench infra examples
	$(VENV)/bin/ruff format --check src tests bench infra examples
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict tests
	$(VENV)/bin/mypy --strict examples
	$(VENV)/bin/lint-imports

unit: install
	$(VENV)/bin/pytest -m unit

# The services the integration tests use are started for the run and stopped after it, failed or
# not; services that were already up (make infra-up, or FEEDCORE_* pointing elsewhere) stay as they were.
test: lint
	@set -e; trap '$(PY) infra/infra.py down --only .infra/test-run' EXIT; \
	environment=$$($(PY) infra/infra.py up --record .infra/test-run); \
	eval "$$environment"; \
	$(VENV)/bin/pytest

infra-up: install
	@$(PY) infra/infra.py up

infra-down: install
	@$(PY) infra/infra.py down

infra-status: install
	@$(PY) infra/infra.py status

format: install
	$(VENV)/bin/ruff format src tests bench infra examples
	$(VENV)/bin/ruff check --fix src tests bench infra examples

run: install
	$(VENV)/bin/feedcore serve

# Benchmarks run on the services they need, started for the run (and stopped after) like make test.
BENCH_SERVICES = set -e; trap '$(PY) infra/infra.py down --only .infra/bench-run' EXIT; \
	environment=$$($(PY) infra/infra.py up --record .infra/bench-run); eval "$$environment"

bench: install
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk))
	@$(BENCH_SERVICES); \
	$(PY) -m bench.read_embedded --connections 32; \
	$(PY) -m bench.write; \
	$(PY) -m bench.fanout; \
	$(PY) -m bench.e2e; \
	$(PY) -m bench.read_redis; \
	$(PY) -m bench.merge; \
	$(PY) -m bench.processors; \
	$(PY) -m bench.partitioned; \
	$(PY) -m bench.streams; \
	$(PY) -m bench.idle

bench-fanout: install
	@$(BENCH_SERVICES); $(PY) -m bench.fanout

bench-e2e: install
	@$(BENCH_SERVICES); $(PY) -m bench.e2e

bench-read: install
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk))
	@$(BENCH_SERVICES); $(PY) -m bench.read_redis

bench-write: install
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk))
	@$(BENCH_SERVICES); $(PY) -m bench.write

bench-idle: install
	@$(BENCH_SERVICES); $(PY) -m bench.idle

bench-merge: install
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk))
	@$(BENCH_SERVICES); $(PY) -m bench.merge

bench-processors: install
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk))
	@$(BENCH_SERVICES); $(PY) -m bench.processors

bench-partitioned: install
	@$(BENCH_SERVICES); $(PY) -m bench.partitioned

bench-streams: install
	@$(BENCH_SERVICES); $(PY) -m bench.streams

# The soak starts (and breaks, and stops) a PostgreSQL, Redis and Kafka of its own, on free ports.
MINUTES ?= 20
soak: install
	$(PY) -m bench.soak --minutes $(MINUTES) $(if $(SEED),--seed $(SEED))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache

# The Docker stack. Without a Docker engine (as on the project's own machines) both stop with a
# message that points to `make infra-up`, which starts the same services without Docker.
DOCKER_COMPOSE := docker compose -f docker/compose.yaml
NEED_DOCKER = echo "make $@ needs a running Docker engine (\`docker info\` failed). Without Docker, start PostgreSQL, Redis and Kafka with \`make infra-up\`." >&2; exit 1

up:
	@docker info >/dev/null 2>&1 || { $(NEED_DOCKER); }
	$(DOCKER_COMPOSE) up --build -d

# Compose interpolates the whole file for every command, so `down` needs FEEDCORE_JWT_SECRET set to
# something as well; stopping the stack does not use it.
down:
	@docker info >/dev/null 2>&1 || { $(NEED_DOCKER); }
	FEEDCORE_JWT_SECRET="$${FEEDCORE_JWT_SECRET:-not-used-by-down}" $(DOCKER_COMPOSE) down
