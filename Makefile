# stockapp: `make demo` runs the whole main job, `make test` runs every test (in three lanes,
# the fast one first: `make test-fast`).
# Both install what they need first. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
QUIX_VENV := .venv-quix
QUIX_VERSION := 3.28.1
# The bench's Quix app writes candles with the same driver the worker uses.
CASSANDRA_DRIVER_VERSION := $(shell sed -n 's/^ *cassandra-driver==//p' setup.cfg)
# Named for what it holds, so that a change of either version rebuilds the environment.
QUIX_STAMP := $(QUIX_VENV)/.installed-$(QUIX_VERSION)-cassandra-$(CASSANDRA_DRIVER_VERSION)
STACK := $(PY) -m stockapp.devstack
PYTEST_ARGS ?=
# Processes for the unit tests (pytest-xdist's -n): one a core by default; 0 runs them in
# this process, as a debugger wants.
UNIT_WORKERS ?= auto

.PHONY: help install up down status migrate demo demo-stop test test-fast test-unit test-frontend chromium containers image prometheus kustomize lint reset bench bench-smoke stress

help:
	@echo "make demo       stack + worker in the background, prints the URL (make demo-stop;"
	@echo "                make demo WORKERS=3 starts three workers on ports 6066..6068)"
	@echo "make test       every test, in three lanes stopping at the first failure: lint, vitest and"
	@echo "                unit tests; integration tests on a real Kafka and Cassandra; browser and"
	@echo "                container (image, Compose) tests"
	@echo "make test-fast  the first lane alone (lint, vitest, unit tests): no servers, a minute or two"
	@echo "make up|down    start/stop the local Kafka + Cassandra (make status)"
	@echo "make image      the stockapp image (docker/Dockerfile) with podman, as stockapp:local"
	@echo "make migrate    create/upgrade the Cassandra schema"
	@echo "make lint       ruff and mypy"
	@echo "make bench      the same stream through stockapp and the alternatives (docs/performance.md)"
	@echo "make stress     a fault scenario looped (STRESS_RUNS=10, STRESS_TEST=...): 0 failures or it fails"
	@echo "make reset      stop the stack and delete its data (jars are kept)"

# The venv is rebuilt when the dependency list changes.
$(VENV)/.installed: setup.py setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
	$(STACK) fetch
	@if [ -f frontend/package.json ]; then $(MAKE) --no-print-directory frontend/dist/index.html; fi

# The lock lists every platform's optional packages (rollup's native builds), so `npm ci`
# installs exactly it and never rewrites it.
frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

# The worker serves the built front end at / (rebuilt when a source file changes).
frontend/dist/index.html: frontend/node_modules/.installed $(wildcard frontend/src/*) frontend/index.html frontend/vite.config.ts
	cd frontend && npm run build

up: install
	$(STACK) up

down:
	@if [ -x $(PY) ]; then $(STACK) down; fi

status: $(VENV)/.installed
	$(STACK) status

migrate: up
	$(VENV)/bin/stockapp db migrate

WORKERS ?= 1
demo: install
	$(STACK) demo-up --workers $(WORKERS)

demo-stop:
	@if [ -x $(PY) ]; then $(STACK) demo-down; fi

# The browser test drives Debian's Chromium through playwright-core (no browser download).
# The commands of this target and the next are variables too (each one { } group): make test
# runs them between its lanes, in a recipe line that must not call $(MAKE) (make -n would run
# that line for real, the stack and the tests with it).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
INSTALL_CHROMIUM = { command -v chromium >/dev/null \
	|| { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }; }
chromium:
	@$(INSTALL_CHROMIUM)

# The image and Compose tests run podman (Debian's 4.3), podman-compose (the dev extra) and, where
# no image registry answers, debootstrap for the stand-in base images. Podman's settings for
# this machine are the project's (stack/conf/containers.conf, through CONTAINERS_CONF).
INSTALL_CONTAINERS = { command -v podman >/dev/null && command -v debootstrap >/dev/null \
	&& command -v runc >/dev/null \
	|| { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq podman buildah debootstrap runc; }; }
containers:
	@$(INSTALL_CONTAINERS)

# Official bases when podman has them, else stand-ins made of Debian packages
# (stockapp/devstack/images.py).
image: $(VENV)/.installed containers
	$(STACK) image

# vitest needs the npm packages only (not the jars nor the build).
test-frontend: frontend/node_modules/.installed
	cd frontend && npm test

# kustomize for the Kubernetes manifests' checks (deploy/k8s), built from the Go module proxy
# into .stack/bin (about a minute, once).
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
KUSTOMIZE_VERSION := v5.5.0
KUSTOMIZE := .stack/bin/kustomize-$(KUSTOMIZE_VERSION)
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE):
	@mkdir -p .stack/bin
	GOBIN=$(abspath .stack/bin) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv .stack/bin/kustomize $@

# Prometheus and promtool for the monitoring tests, unpacked from Debian's package: nothing is
# installed system-wide and no service starts (the tests run Prometheus on 127.0.0.1).
PROMETHEUS := .stack/prometheus/usr/bin/prometheus
prometheus: $(PROMETHEUS)
$(PROMETHEUS):
	@mkdir -p .stack/prometheus/deb
	cd .stack/prometheus/deb && { apt-get download prometheus 2>/dev/null \
		|| { $(SUDO) apt-get update -qq && apt-get download prometheus; }; }
	dpkg -x .stack/prometheus/deb/prometheus_*.deb .stack/prometheus
	rm -rf .stack/prometheus/deb

# make test runs three lanes, cheapest first, and stops at the first that fails, printing each
# lane's time:
#   1. `make test-fast`: lint, the front end's vitest tests and tests/unit. It needs the venv and
#      the npm packages only (and the built front end, whose bundle a unit test reads), so it
#      runs before the slow installs and before the stack starts.
#   2. tests/integration on the real Kafka and Cassandra, less the browser and container tests:
#      after the jars, Prometheus and kustomize.
#   3. The browser tests (headless Chromium) and the image and Compose tests (podman), last:
#      Chromium and podman are installed only once lane 2 has passed.
# Each lane is a pytest selection; tests/unit/test_lanes.py checks that together they collect
# every test exactly once, and that the tests needing Chromium or podman are lane 3's.
LANE_FAST := tests/unit
LANE_STACK := tests/integration -m "not browser and not containers"
LANE_LAST := tests/integration -m "browser or containers"
# $(call timed,NAME,COMMANDS): runs COMMANDS (a && list, no commas), prints how long lane NAME
# took and whether it passed, and fails if they did.
timed = ( echo "==> $(1)"; t0=$$SECONDS; rc=0; $(2) || rc=$$?; \
	echo "==> $(1): $$(( SECONDS - t0 )) s, $$( [ $$rc = 0 ] && echo passed || echo FAILED )"; \
	exit $$rc )

test-fast:
	@$(call timed,lane 1 of 3 (lint + vitest + unit tests),$(MAKE) --no-print-directory lint test-frontend frontend/dist/index.html test-unit)

# Leaves the stack as it found it: stopped afterwards only if this run started it, whether
# lane 2 or 3 passed or not. A run must not change tracked files either (a build that rewrites
# the lock file, a test that writes into the tree): the git status after the tests must equal
# the one before any install.
TREE_STATE := $(shell git status --porcelain 2>/dev/null | md5sum)
test:
	@$(MAKE) --no-print-directory test-fast
	@$(call timed,lane 2 of 3: installs (jars + front end + Prometheus + kustomize),$(MAKE) --no-print-directory install prometheus kustomize)
	@if $(STACK) status --quiet; then was_up=1; else was_up=0; fi; \
	rc=0; \
	$(call timed,lane 2 of 3 (integration tests on the stack),$(STACK) up && $(PY) -m pytest $(LANE_STACK) $(PYTEST_ARGS)) \
	&& $(call timed,lane 3 of 3 (browser + container tests),$(INSTALL_CHROMIUM) && $(INSTALL_CONTAINERS) && $(PY) -m pytest $(LANE_LAST) $(PYTEST_ARGS)) \
	|| rc=$$?; \
	if [ $$was_up = 0 ]; then $(STACK) down; fi; \
	if [ "$$(git status --porcelain 2>/dev/null | md5sum)" != "$(TREE_STATE)" ]; then \
		echo "make test changed the work tree:"; git status --short; rc=1; fi; \
	exit $$rc

test-unit: $(VENV)/.installed
	$(PY) -m pytest $(LANE_FAST) -n $(UNIT_WORKERS) $(PYTEST_ARGS)

# Needs the stack (started if it is not); results in bench/results/ (git-ignored).
bench: up $(QUIX_STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench --profile
	$(PY) -m bench.latency
	$(PY) -m bench.driver

# The Quix Streams contender runs in its own venv: Quix 3.28 pins pydantic and
# pydantic-settings below the versions stockapp uses.
$(QUIX_STAMP):
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/python -m pip install -q --upgrade pip
	$(QUIX_VENV)/bin/python -m pip install -q 'quixstreams==$(QUIX_VERSION)' 'cassandra-driver==$(CASSANDRA_DRIVER_VERSION)'
	touch $@

# The harness on a tiny stream; make test runs it as tests/integration/test_bench_smoke.py.
bench-smoke: up
	$(PY) -m bench --smoke

# A test that fails now and then is a defect: a fix is proven by looping its scenario, not by
# one green run. Stops at the first failure (its report names the late ticks and the closes).
STRESS_RUNS ?= 10
STRESS_TEST ?= tests/integration/test_faults.py::test_cassandra_stopped_for_a_minute_loses_nothing
stress: up
	@for i in $$(seq 1 $(STRESS_RUNS)); do \
		echo "stress: run $$i of $(STRESS_RUNS): $(STRESS_TEST)"; \
		$(PY) -m pytest -q -p no:cacheprovider $(STRESS_TEST) || { echo "stress: run $$i failed"; exit 1; }; \
	done; echo "stress: $(STRESS_RUNS) runs, 0 failures"

# mypy's settings, and what it checks, are in pyproject.toml ([tool.mypy]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

reset: down
	rm -rf .stack/kafka/data .stack/kafka/cluster.id .stack/cassandra/data .data .run
