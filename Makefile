# Two commands for a fresh machine: `make demo` and `make test`. Everything else is set-up they call.
PYTHON ?= python3.11
# lava-nc 0.10.0 supports Python 3.10 only; find a 3.10 interpreter (pyenv keeps it outside PATH's shims).
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV := .venv
LAVA_VENV := .venv-lava
PIP_FLAGS ?= -q
LAVA_DL := lava-dl==0.6.0

.PHONY: setup lava-env system-deps demo test test-main test-lava lava-fixtures bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) "torch==2.13.0" -e ".[torch,interop,neurobench,sanafe,tonic,test]"
	touch $@

lava-env: $(LAVA_VENV)/.installed

$(LAVA_VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON310)" || { echo "make lava-env: no Python 3.10 found (lava-nc 0.10.0 needs it); set PYTHON310=/path/to/python3.10"; exit 1; }
	$(PYTHON310) -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/pip install $(PIP_FLAGS) -e ".[lava,test]"
	# lava-dl's netx reader, for tests/test_netx_lava.py: --no-deps, because lava-dl pins torch 2.3, which
	# exists for Python 3.10 only as multi-GB CUDA wheels; reading netx files never needs torch (tests/netx_reader.py)
	$(LAVA_VENV)/bin/pip install $(PIP_FLAGS) --no-deps "$(LAVA_DL)"
	touch $@

# espeak-ng and flite synthesize the offline stand-in data set (Debian packages).
system-deps:
	@command -v espeak-ng >/dev/null 2>&1 && command -v flite >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq espeak-ng flite >/dev/null; }

demo: setup system-deps
	$(VENV)/bin/python examples/demo.py

# The suites run side by side: the main one on pytest-xdist workers (one per core), the Lava one
# (one process) beside it, once the artifacts it reads are written (in the main environment: the
# Lava one has no torch). Sharing 2 cores evenly, the Lava chain ran longer (965 s against 769 s),
# so the main workers yield to it (nice). --output-sync prints each suite's output whole, when it ends.
test: setup lava-env system-deps
	$(MAKE) -j2 --output-sync=target test-main test-lava MAIN_ARGS=--ignore=tests/test_lava_fixtures.py NICE="nice -n 10"

test-main:
	$(NICE) $(VENV)/bin/python -m pytest -q -n auto -m "not lava" $(MAIN_ARGS) tests

test-lava: lava-env lava-fixtures
	$(LAVA_VENV)/bin/python -m pytest -q -m lava -p no:cacheprovider tests

lava-fixtures: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_lava_fixtures.py

bench: setup lava-env
	$(VENV)/bin/python benchmarks/bench_simulator.py

clean:
	rm -rf $(VENV) $(LAVA_VENV) build dist *.egg-info out
