# Durable Lab — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

# AWS's conformance requirements: the wheel pinned (version and sha256) in conformance/pinned-wheel.txt,
# kept under .data/ and read by the tests as it is. It declares Python >= 3.14 for its own runner,
# which we never import, hence --python-version; --require-hashes refuses any other file.
CONFORMANCE_PIN := conformance/pinned-wheel.txt
CONFORMANCE_WHEEL := .data/conformance/aws_durable_execution_conformance_tests-1.0.0-py3-none-any.whl

.PHONY: run status test install install-dev node-runtime conformance-wheel browser migrate worker scheduler web bench bench-quick lint fmt clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The Node runtime for TypeScript/JavaScript handlers (issue 18): Node 22 itself comes from the npm
# registry as the `node` package (Debian's apt has Node 18 only), with AWS's JS durable SDK, all pinned
# by engine/runtimes/node/package-lock.json and installed under .data/node (outside the engine
# package, whose Python files the tests scan). Any npm can install it; a machine without one gets
# Debian's `npm` package first.
NODE_RUNTIME := engine/runtimes/node
NODE_HOME := .data/node
NODE_STAMP := $(NODE_HOME)/node_modules/.installed

$(NODE_STAMP): $(NODE_RUNTIME)/package.json $(NODE_RUNTIME)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's npm to fetch the project's Node 22"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	mkdir -p $(NODE_HOME)
	cp $(NODE_RUNTIME)/package.json $(NODE_RUNTIME)/package-lock.json $(NODE_HOME)/
	cd $(NODE_HOME) && npm ci --no-audit --no-fund --loglevel=error
	$(NODE_HOME)/node_modules/node/bin/node --version
	touch $@

install: $(VENV)/.runtime $(NODE_STAMP)
install-dev: $(VENV)/.dev $(CONFORMANCE_WHEEL) $(NODE_STAMP)

## node-runtime: install the project-local Node 22 and the JS durable SDK (part of install)
node-runtime: $(NODE_STAMP)

## conformance-wheel: download the pinned conformance requirements the tests read
conformance-wheel: $(CONFORMANCE_WHEEL)

$(CONFORMANCE_WHEEL): $(CONFORMANCE_PIN) | $(VENV)/.runtime
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --python-version 3.14 \
	  --only-binary=:all: --require-hashes -r $(CONFORMANCE_PIN) -d $(@D)
	touch $@

# Real browser tests use Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will be skipped"; }

migrate: install
	$(PY) manage.py migrate --verbosity 0

## run: set up everything and run web server, worker and scheduler until Ctrl-C (VERBOSE=1: every log line)
run: install
	$(PY) manage.py durable_up --port $(PORT) $(if $(VERBOSE),--verbose)

## status: what `make run` is running: each part's pid, state and restart count
status:
	@cat $${DURABLE_DATA_DIR:-.data}/run.json 2>/dev/null || echo "no make run has started here yet"

## test: set up and run the whole test suite (PYTEST_ARGS="tests/engine -x": a part of it, pytest options)
test: install-dev browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The web part alone, as `make run` starts it (durable_up.web_command).
web: install
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) -m gunicorn --config=python:durable_site.gunicorn_config --bind=127.0.0.1:$(PORT) --threads=8 \
	  durable_site.wsgi:application

## worker: this host's Celery worker on the `durable` queue. Another machine joins with the same
## DATABASE_URL and CELERY_BROKER_URL (both required there: unset, each falls back to this checkout's
## own embedded server, which no other machine sees). DURABLE_WORKERS processes (default 2), or
## DURABLE_AUTOSCALE="max,min" for Celery's autoscaling; DURABLE_HOST_ID names the host (hostname).
DURABLE_WORKERS ?= 2
worker: install
	@if [ "$${DATABASE_URL:+1}" != "$${CELERY_BROKER_URL:+1}" ]; then \
	  echo "WARNING: only one of DATABASE_URL and CELERY_BROKER_URL is set; the other is this checkout's embedded" \
	       "server, which no other machine reaches (see README: Running on more than one machine)" >&2; fi
	exec $(PY) -m celery -A durable_site worker -P prefork \
	  $(if $(DURABLE_AUTOSCALE),--autoscale=$(DURABLE_AUTOSCALE),-c $(DURABLE_WORKERS)) \
	  -Q durable -n "durable-$$$$@$${DURABLE_HOST_ID:-%h}" -l INFO

scheduler: install
	$(PY) manage.py durable_scheduler

bench: install-dev
	$(PY) manage.py durable_bench

bench-quick: install-dev
	$(PY) manage.py durable_bench --quick

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .data .pytest_cache
