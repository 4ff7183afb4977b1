# Tollgate: `make run` serves the demo at http://127.0.0.1:8000, `make test` runs the suite.
# Both bootstrap uv (from PyPI, pinned) and the virtualenv from uv.lock, and check the system libraries
# WeasyPrint needs for PDFs (`make system-deps`: installed with apt-get when missing and run as root).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PY := $(UV) run --frozen --no-sync python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
HOST ?= 127.0.0.1
PORT ?= 8000
PROD_CHECK_ENV := DJANGO_SETTINGS_MODULE=config.settings.production \
	DJANGO_SECRET_KEY=ci-dummy-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS \
	DJANGO_ALLOWED_HOSTS=pay.example.com REDIS_URL=redis://127.0.0.1:6379/0 \
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
	TOLLGATE_PLATFORM_LEGAL_NAME="Example Platform s.r.o." TOLLGATE_PLATFORM_ADDRESS="Street 1" \
	TOLLGATE_PLATFORM_VAT_ID=CZ25596641

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) into .tools/ from PyPI"
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

.PHONY: venv
venv: .venv/.synced ## create/refresh the virtualenv from uv.lock

# WeasyPrint (dispute evidence packs, PDFs) loads pango and harfbuzz-subset at run time: Debian package, library.
WEASYPRINT_DEBS := libpango-1.0-0:libpango-1.0.so.0 libpangoft2-1.0-0:libpangoft2-1.0.so.0 \
	libharfbuzz-subset0:libharfbuzz-subset.so.0
LDCONFIG := $(shell command -v ldconfig 2>/dev/null || echo /sbin/ldconfig)

.PHONY: system-deps
system-deps: ## the Debian packages WeasyPrint needs: installed if missing (as root), else the command is printed
	@missing=""; \
	for pair in $(WEASYPRINT_DEBS); do \
	  $(LDCONFIG) -p 2>/dev/null | grep -qF "$${pair#*:} " || missing="$$missing $${pair%%:*}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing what WeasyPrint needs:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends $$missing \
	    || { apt-get update && apt-get install -y --no-install-recommends $$missing; }; \
	else \
	  echo "WeasyPrint (evidence-pack PDFs) needs system libraries that are missing:$$missing"; \
	  echo "  install them with: sudo apt-get install -y$$missing"; \
	fi

.PHONY: run
run: export TOLLGATE_PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: venv system-deps ## migrate, load demo data, serve http://$(HOST):$(PORT)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo_data
	$(PY) manage.py runserver $(HOST):$(PORT)

.PHONY: test
test: venv system-deps ## the whole suite on SQLite with eager Celery
	$(UV) run --frozen --no-sync pytest $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff
	$(UV) run --frozen --no-sync ruff check .

.PHONY: fmt
fmt: venv ## ruff --fix
	$(UV) run --frozen --no-sync ruff check --fix .

.PHONY: migrations-check
migrations-check: venv ## fail if a model change has no migration
	$(PY) manage.py makemigrations --check --dry-run

.PHONY: schema
schema: venv ## regenerate openapi.yaml
	$(PY) manage.py spectacular --file openapi.yaml --validate --fail-on-warn

.PHONY: schema-check
schema-check: venv ## fail if openapi.yaml differs from the generated schema
	$(PY) manage.py spectacular --file .openapi.generated.yaml --validate --fail-on-warn
	diff -u openapi.yaml .openapi.generated.yaml && rm -f .openapi.generated.yaml

.PHONY: deploy-check
deploy-check: venv ## check --deploy on production settings with dummy secrets
	$(PROD_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING

.PHONY: clean
clean: ## remove the virtualenv, the SQLite database and collected files
	rm -rf .venv .tools db.sqlite3* staticfiles .openapi.generated.yaml

.PHONY: reset
reset: venv ## delete the local SQLite database, migrate and load the demo data again
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo_data

.PHONY: ledger-check
ledger-check: venv ## prove the ledger: balanced, running totals match entries, nets to zero
	$(PY) manage.py ledger_check

.PHONY: worker
worker: venv ## a Celery worker on all queues (needs CELERY_BROKER_URL)
	$(UV) run --frozen --no-sync celery -A config worker -Q webhooks,payouts,documents,default -c 2 --max-tasks-per-child=50 --loglevel=INFO

.PHONY: beat
beat: venv ## Celery beat: the periodic tasks of config/celery.py (needs CELERY_BROKER_URL)
	$(UV) run --frozen --no-sync celery -A config beat --loglevel=INFO

.PHONY: ci
ci: ## what CI runs
	bash .ci/run
