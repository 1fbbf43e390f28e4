# Gridwatch — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
GW := $(VENV)/bin/gridwatch
HOST ?= 127.0.0.1
PORT ?= 8050

.PHONY: demo test serve system-deps test-system-deps venv bench clean db-down

## make demo: install what is missing, start the embedded PostGIS, load the demo data if empty, serve
demo: system-deps $(VENV)/.installed
	$(GW) start --host $(HOST) --port $(PORT)

## make test: install test needs (PostGIS, Chromium, GDAL), then run the whole suite
test: system-deps test-system-deps $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

serve: $(VENV)/.installed
	$(GW) serve --host $(HOST) --port $(PORT)

bench: system-deps $(VENV)/.installed
	$(PY) -m bench

db-down:
	$(GW) db down

# exactly the Debian/Ubuntu packages that are used, each checked after install (tools/system-deps)
system-deps:
	@tools/system-deps demo

test-system-deps:
	@tools/system-deps test

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) *.egg-info test-results
