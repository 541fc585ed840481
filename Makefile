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

.PHONY: run status test install install-dev conformance-wheel browser migrate worker scheduler web bench bench-quick lint fmt clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev $(CONFORMANCE_WHEEL)

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

## test: set up and run the whole test suite
test: install-dev browser
	$(PY) -m pytest

# The web part alone, as `make run` starts it (durable_up.web_command).
web: install
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) -m gunicorn --config=python:durable_site.gunicorn_config --bind=127.0.0.1:$(PORT) --threads=8 \
	  durable_site.wsgi:application

worker: install
	$(PY) -m celery -A durable_site worker -P prefork -c 2 -Q durable -l INFO

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
