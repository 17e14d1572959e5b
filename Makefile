# Short names for what people type. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DJANGO_SETTINGS_MODULE ?= config.settings.default

.PHONY: run install browser migrate seed test drills lint typecheck imports bench worker beat messages stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Without DATABASE_URL (and REDIS_URL for the tests) the servers are started from wheels.
DEVSERVERS := $(BIN)/python -m config.devservers

## Run the service with demo data, tasks in-process: http://127.0.0.1:8000/
run: install
	DEBUG=1 $(DEVSERVERS) run -- sh -c '$(BIN)/python manage.py migrate --noinput && \
	  $(BIN)/python manage.py seed_demo && exec $(BIN)/python manage.py runserver 127.0.0.1:8000'

## Headless Chromium for the console's browser tests: Debian's package, installed when missing
## (as root; elsewhere set CHROMIUM to a Chromium binary).
browser:
	@if [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; \
	fi

## The whole test suite on PostgreSQL and Redis (and the console in headless Chromium).
test: install browser
	$(DEVSERVERS) run --redis -- $(BIN)/pytest -n $${PYTEST_WORKERS:-2} $(PYTEST_ARGS)

## Fault drills alone, with their reports (they also run in `make test`).
drills: install
	$(DEVSERVERS) run --redis -- $(BIN)/pytest -s -p no:logging tests/drills

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The layers: loyalty < members < points < {rewards, events} < insights.
imports: install
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

bench: install
	$(BIN)/python -m bench

worker: install
	$(BIN)/celery -A config worker --loglevel=INFO

beat: install
	$(BIN)/celery -A config beat --loglevel=INFO

messages: install
	DEBUG=1 $(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=tests --ignore=bench --no-obsolete
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv

## Stop the embedded servers; clean also removes their data and the virtualenv.
stop:
	@if [ -x $(BIN)/python ]; then $(DEVSERVERS) stop; fi

clean: stop
	rm -rf $(VENV) .devservers
