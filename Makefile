# The two Quickstart commands: `make run` and `make test`. Each sets up what it needs first.
VENV ?= .venv
export SFT_TUI_VENV := $(VENV)

.PHONY: run test bench clean

run: $(VENV)/.app-ready
	$(VENV)/bin/sft-tui $(ARGS)

test: $(VENV)/.test-ready
	$(VENV)/bin/python -m pytest -v $(PYTEST_ARGS)

bench: $(VENV)/.test-ready
	$(VENV)/bin/python bench/startup.py
	$(VENV)/bin/python bench/validate_throughput.py
	$(VENV)/bin/python bench/follow_log.py
	$(VENV)/bin/python bench/memory_published.py
	$(VENV)/bin/python bench/throughput_published.py

$(VENV)/.app-ready: pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh app

$(VENV)/.test-ready: pyproject.toml constraints/test.txt scripts/setup_env.sh
	bash scripts/setup_env.sh test

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist
