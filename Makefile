# The front door. `make run` starts everything with demo data; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-unit browser bench lint format docs migrate token lock clean golden

$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	@# the repo root is the import root (shared/, services/); no build step needed
	$(PY) -c "import site, sys; open(site.getsitepackages()[0] + '/people_supervisors.pth', 'w').write(sys.argv[1])" "$(CURDIR)"
	touch $(STAMP)

run: $(STAMP)  ## start PostgreSQL, the broker, every service and demo data
	$(PY) -m shared.devstack

test: $(STAMP) browser  ## unit, integration, end-to-end and browser tests against real PostgreSQL and a real broker
	$(PY) -m pytest

# Debian's chromium for the browser tests (tests/browser, Playwright): installed with apt-get when missing and we
# are root; otherwise a clear error (the browser tests never skip). CHROMIUM_PATH: another Chromium binary.
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH
# Chinese fonts (fonts-noto-cjk) too: without them the pages' screenshots show boxes instead of characters.
browser:
	@if [ -x "$(CHROMIUM_PATH)" ] && [ -n "$$(fc-list :lang=zh 2>/dev/null)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium and Chinese fonts for the browser tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk \
			|| exit 1; \
	fi; \
	if [ ! -x "$(CHROMIUM_PATH)" ] || [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; then \
		echo "error: the browser tests need Chromium at $(CHROMIUM_PATH) and a Chinese font; one is missing." >&2; \
		echo "       Install as root: apt-get install -y chromium fonts-noto-cjk   (or set CHROMIUM_PATH=<binary>)" >&2; \
		exit 1; \
	fi

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

bench: $(STAMP)  ## benchmarks, each against a baseline measured in the same run
	$(PY) -m bench

golden: $(STAMP)  ## re-render page 1 of every document of record into tests/golden/ (look at them before committing)
	GOLDEN_UPDATE=1 $(PY) -m pytest -q $$(grep -rl assert_golden tests/unit)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .

docs: $(STAMP)  ## AsyncAPI document of every event (from the contracts) and the rule index (from the code)
	$(PY) -m shared.events.asyncapi docs/asyncapi.json
	$(PY) -m tools.rule_index docs/RULE_INDEX.md

migrate: $(STAMP)  ## upgrade every service schema (DATABASE_URL must be set)
	$(PY) -m shared.db.migrate

REGISTRY_URL ?= http://127.0.0.1:$(or $(SERVICE_BASE_PORT),8001)
token: $(STAMP)  ## make token ROLE=district_bureau DISTRICT=文登区 (ROLE=supervisor: one of make run's roster)
	$(PY) -m shared.tokens --key-file .data/dev-keys.json --role $(ROLE) \
		$(if $(DISTRICT),--district $(DISTRICT)) $(if $(OFFICE),--office $(OFFICE)) \
		$(if $(SUPERVISOR_ID),--supervisor-id $(SUPERVISOR_ID),--pick-supervisor $(REGISTRY_URL))

lock:  ## re-pin requirements.lock (dev) and requirements-runtime.lock (image) from pyproject.toml
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements-runtime.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
