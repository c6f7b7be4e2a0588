# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
WORKER_PORT ?= 8502
# Only this machine can reach the panel unless ADDRESS says otherwise (ADDRESS=0.0.0.0).
ADDRESS ?= 127.0.0.1

.PHONY: run worker test lint format demo e2e clean

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; using python3"; }
	@test -x $(PY) || $$(command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Seeds the demo only into an empty store, then serves the panel on http://$(ADDRESS):$(PORT).
run: $(VENV)/.installed
	$(PY) -m mlops_core demo --if-empty
	@if [ "$(ADDRESS)" != "127.0.0.1" ] && [ "$(ADDRESS)" != "localhost" ]; then \
	  echo "WARNING: serving on $(ADDRESS): anyone who reaches this port can try the demo accounts' published passwords. Change or remove them (python -m mlops_core users) first."; \
	fi
	@# The worker runs beside the UI and stops with it (Ctrl-C reaches both; the trap covers
	@# the UI ending any other way).
	$(PY) -m mlops_core worker --port $(WORKER_PORT) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) -m streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT)

# The worker alone: scheduled checks, notifications, MLflow webhooks (http://127.0.0.1:$(WORKER_PORT)).
worker: $(VENV)/.installed
	$(PY) -m mlops_core worker --port $(WORKER_PORT)

demo: $(VENV)/.installed
	$(PY) -m mlops_core demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider --durations=30 $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .mlops .pytest_cache
