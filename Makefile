# The index of what can be done with this repository. Recipes longer than a
# few lines live in deploy/scripts/.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PACKAGES := libs/contracts libs/platform libs/testkit services/auth services/message services/gateway bench

.PHONY: install system-packages dev-packages web lock dev test lint format contracts bench up down \
        k8s-render clean

install: $(BIN)/.installed  ## virtualenv + every package editable + dev tools, from the lock

$(BIN)/.installed: requirements.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	touch $@

# What Debian provides (Chromium, nginx, npm, Redis, RabbitMQ...): apt-installed when
# missing, through sudo when not root; Redis and RabbitMQ started when not listening.
system-packages:  ## everything `make test` needs from the system
	deploy/scripts/system-packages.sh test

dev-packages:  ## npm, and Redis and RabbitMQ running, for `make dev`
	deploy/scripts/system-packages.sh dev

web: install  ## fetch the web client's JS library from npm (installs npm when missing)
	deploy/scripts/system-packages.sh web
	deploy/scripts/build-web.sh

lock:  ## pin what the pyproject files add in requirements.lock, keeping other pins (UPGRADE=1: re-resolve all)
	deploy/scripts/lock.sh $(if $(UPGRADE),--upgrade)

dev: install dev-packages web  ## run the whole system locally
	$(BIN)/python deploy/scripts/dev.py

test: install system-packages web  ## the whole test suite
	$(BIN)/python -m pytest

# Test folders whose helper modules (gateway_support, ...) the tests import by name:
# pytest's `pythonpath` setting puts them on sys.path. In the run over the whole tree
# those imports do not resolve and mypy reads them as Any; with a folder on MYPYPATH
# they do, but mypy then names modules from that folder down, and two folders'
# integration/conftest.py would both be `integration.conftest`: one run per folder.
HELPER_TEST_DIRS := services/gateway/tests services/message/tests tests/deploy tests/browser

lint: install  ## ruff + mypy on the whole tree, tests included
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/*/src services/*/src bench/chatbench libs/*/tests services/*/tests tests
	status=0; for dir in $(HELPER_TEST_DIRS); do MYPYPATH=$$dir $(BIN)/mypy $$dir || status=1; done; \
	exit $$status

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

contracts: install  ## rewrite the contracts' schema snapshot after a deliberate contract change
	$(BIN)/python -m chat_contracts.schema > libs/contracts/tests/contracts.schema.json

bench: install dev-packages web  ## benchmark send-to-deliver; not part of `make test` (SCENARIO=direct RATE=500 DURATION=60 BENCH_ARGS=--dev)
	$(BIN)/python -m chatbench $(or $(SCENARIO),all) \
	  $(if $(RATE),--rate $(RATE)) $(if $(DURATION),--duration $(DURATION)) \
	  $(if $(USERS),--users $(USERS)) $(if $(CONNECTIONS),--connections $(CONNECTIONS)) \
	  $(if $(CLIENTS),--clients $(CLIENTS)) $(if $(WORKERS),--workers $(WORKERS)) $(BENCH_ARGS)

up:  ## the whole stack in Docker (needs .env and .dev/jwt-private.pem; see README)
	docker compose up -d --build --wait

down:
	docker compose down --remove-orphans

# kubectl's embedded kustomize where kubectl is installed; elsewhere the small renderer
# the tests use, which tests/deploy/test_kustomize_lite.py holds to kubectl's output.
# Only YAML goes to stdout, so that the output can be piped or saved.
k8s-render:  ## print an overlay's manifests: make k8s-render env=prod
	@if command -v kubectl >/dev/null; then kubectl kustomize k8s/overlays/$(or $(env),dev); \
	else $(MAKE) --no-print-directory install >&2 && \
	  $(BIN)/python tests/deploy/kustomize_lite.py k8s/overlays/$(or $(env),dev); fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
