# Quartet: `make up` runs the system, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --all-packages --frozen
INFRA_ENV := .local/infra.env
# Written by `make traces`: OTEL_EXPORTER_OTLP_ENDPOINT for the services `make up` starts natively.
TRACES_ENV := .local/traces.env
# Written by `make metrics`: where its Prometheus serves the Quartet console and the alerts.
METRICS_ENV := .local/metrics.env
# Kafka nodes `make up`/`make infra-up` start: 1 (the default) or a native KRaft cluster, e.g. KAFKA_NODES=3.
KAFKA_NODES ?= $(or $(QUARTET_KAFKA_NODES),1)

.PHONY: help install infra-install tools-install infra-up infra-down infra-status engine-up engine-down engine-status base-image images traces traces-down metrics metrics-down up down test test-fast lint bench demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install uv and the workspace (every service and the kernel) into .venv
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --all-packages --frozen --quiet

infra-install: install ## Fetch the Kafka broker's jars (Maven) and Redis/PostgreSQL (Debian) if missing
	@$(RUN) python -m quartet_tools.infra install

tools-install: install ## Pinned helm, promtool and Toxiproxy (Go module proxy, cached in ~/.cache/quartet; the OpenTelemetry Collector builds on first need), Zipkin (Maven, .local/zipkin), Debian's Prometheus (unpacked into .local/prometheus); Debian chromium for the browser tests
	@$(RUN) python -m quartet_tools.infra install-tools >/dev/null

infra-up: infra-install ## Start Kafka, Redis and PostgreSQL (Compose if Docker answers, natively otherwise; KAFKA_NODES=3: a native cluster)
	@QUARTET_KAFKA_NODES=$(KAFKA_NODES) $(RUN) python -m quartet_tools.infra up

infra-down: ## Stop what infra-up started, and nothing else
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m quartet_tools.infra down; fi

infra-status: ## Show the servers infra-up manages
	@$(RUN) python -m quartet_tools.infra status

engine-up: install ## Install docker.io, debootstrap and the Compose CLI if missing; start the project's own dockerd (.local/docker.env)
	@$(RUN) python -m quartet_tools.engine up

engine-down: ## Stop the dockerd engine-up started (and its containers), and nothing else
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m quartet_tools.engine down; fi

engine-status: ## Show whether the project's dockerd runs and answers
	@$(RUN) python -m quartet_tools.engine status

base-image: engine-up ## Build the bookworm base image (debootstrap from the apt mirror) into the project's engine
	@$(RUN) python -m quartet_tools.engine base-image

images: engine-up ## Build every image (wheels and jars staged on the host under .local/images/) into the project's engine
	@$(RUN) python -m quartet_tools.images build

traces: install ## Start Zipkin behind an OpenTelemetry Collector natively (.local/traces.env); a later `make up` sends them its spans
	@$(RUN) python -m quartet_tools.traces up

traces-down: ## Stop what `make traces` started (services started meanwhile keep sending: restart them)
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m quartet_tools.traces down; fi

metrics: install ## Start Debian's Prometheus natively on 127.0.0.1 (9090, or a free port; .local/metrics.env), scraping what `make up` runs, with the alert rules and the Quartet console
	@$(RUN) python -m quartet_tools.metrics up

metrics-down: ## Stop what `make metrics` started
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m quartet_tools.metrics down; fi

up: infra-up ## Start everything and print where to look
	@set -a; source $(INFRA_ENV); set +a; $(RUN) quartet topics --create >/dev/null
	@set -a; source $(INFRA_ENV); if [ -f $(TRACES_ENV) ]; then source $(TRACES_ENV); fi; set +a; \
	 $(RUN) python -m quartet_tools.services up
	@echo; echo "Quartet is up. Settings: $(INFRA_ENV); API key (QUARTET_API_KEY): .local/api-keys.env"; cat $(INFRA_ENV); \
	 if [ -f $(TRACES_ENV) ]; then echo "Traces (make traces): $$(sed -n 's/^QUARTET_TRACES_URL=//p' $(TRACES_ENV))"; fi; \
	 if [ -f $(METRICS_ENV) ]; then echo "Metrics (make metrics): $$(sed -n 's/^QUARTET_METRICS_URL=//p' $(METRICS_ENV))"; fi; \
	 $(RUN) python -m quartet_tools.services status

down: ## Stop the services, the servers, the trace viewer and Prometheus
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m quartet_tools.services down; fi
	@$(MAKE) --no-print-directory metrics-down traces-down infra-down

lint: install ## ruff and mypy (strict)
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy

test: infra-install tools-install lint ## Every test; the docker-marked ones too where an engine answers or must start (CI, root with apt-get)
	@$(RUN) python -m quartet_tools.testrun

test-fast: install ## Unit tests only: no server, nothing marked slow (make test runs both), one process per core
	@$(RUN) pytest -m "not integration and not slow" -n auto

bench: infra-install ## Run the benchmarks and write bench/RESULTS.md
	@$(RUN) python bench/run_all.py --out bench/RESULTS.md

demo: install ## A 60-second simulator scenario against the running system (make up first); prints its report
	@set -a; for f in $(INFRA_ENV) .local/simulator.env; do if [ -f $$f ]; then source $$f; fi; done; set +a; \
	 $(RUN) quartet simulate demo

clean: down ## Stop everything and remove local state
	rm -rf .local
