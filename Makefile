# Gridwatch — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
GW := $(VENV)/bin/gridwatch
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends
HOST ?= 127.0.0.1
PORT ?= 8050

.PHONY: demo test serve system-deps test-system-deps venv bench clean db-down

## make demo: install what is missing, start the embedded PostGIS, load the demo data if empty, serve
demo: system-deps $(VENV)/.installed
	$(GW) start --host $(HOST) --port $(PORT)

## make test: install test needs (PostGIS, Chromium, GDAL), then run the whole suite
test: system-deps test-system-deps $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

serve: $(VENV)/.installed
	$(GW) serve --host $(HOST) --port $(PORT)

bench: system-deps $(VENV)/.installed
	$(PY) -m bench

db-down:
	$(GW) db down

# PostgreSQL + PostGIS from Debian when absent (any PostgreSQL with a postgis extension will do)
system-deps:
	@if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then \
	  echo "Installing PostgreSQL + PostGIS (apt)…"; \
	  $(SUDO) apt-get update -qq && $(APT) postgresql postgis; \
	fi
	@command -v python3 >/dev/null || ($(SUDO) apt-get update -qq && $(APT) python3 python3-venv)
	@python3 -c 'import venv, ensurepip' 2>/dev/null || ($(SUDO) apt-get update -qq && $(APT) python3-venv)

test-system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ogrinfo >/dev/null || missing="$$missing gdal-bin"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then echo "Installing$$missing (apt)…"; \
	  $(SUDO) apt-get update -qq && $(APT) $$missing; fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) *.egg-info test-results
