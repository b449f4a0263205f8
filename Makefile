# The two commands of the README: `make demo` and `make test`. Both set up a
# fresh machine first (system tools, .venv) through scripts/setup.sh.
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench

$(STAMP): pyproject.toml testbed/pyproject.toml scripts/setup.sh
	./scripts/setup.sh

demo: $(STAMP)
	$(VENV)/bin/python -m testbed.demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python -m perf.api_rate
