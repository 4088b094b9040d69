# Two commands do all set-up: `make reproduce` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.clipo-installed
CORES  ?= all
PYTEST_ARGS ?=

.PHONY: install reproduce test bench paper-tables clean

install: $(STAMP)

# Re-installs only when the dependency pins change; the package itself is installed editable.
$(STAMP): pyproject.toml requirements/cpu.lock requirements/test-extra.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/cpu.lock -e '.[test]'
	$(PY) -m pip install -q -c requirements/cpu.lock -r requirements/test-extra.lock
	touch $@

reproduce: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install -q -c requirements/cpu.lock -e '.[bench]'
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

paper-tables: $(STAMP)
	$(VENV)/bin/snakemake --cores 1 paper_tables

clean:
	rm -rf results/mini .snakemake
