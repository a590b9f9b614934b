# The two commands of the README: `make demo` and `make test`. Both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NATIVE := $(shell find offload_vm firmware_hooks freeoffload -name '*.c' -o -name '*.h' 2>/dev/null)
PYTEST_ARGS ?=
PARTS := topology probes agent offload_vm firmware_hooks

.PHONY: all deps install demo test lint pytest clean

all: install

deps:
	sh .ci/install-deps

$(STAMP): pyproject.toml setup.py $(NATIVE)
	sh .ci/install-deps
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# The main job: the paper's CR-map checked and drawn, then the testbed (namespaces, agents,
# device daemons) brought up, the re-offloading scenario fig7 run and told as a story, the
# figures left in out/, and everything brought down again. Needs root (sudo when not root).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
demo: install
	mkdir -p out
	$(PY) -m freeoffload topology validate examples/topologies/paper.yaml examples/tasks/*.yaml
	$(PY) -m freeoffload topology show examples/topologies/paper.yaml --png out/paper.png
	$(SUDO) $(PY) -m freeoffload testbed run fig7 --out out

lint: install
	$(VENV)/bin/ruff check .
	# mypy sees the packages as installed (freeoffload.<part>) through a tree of links.
	rm -rf build/typecheck && mkdir -p build/typecheck/freeoffload
	for f in freeoffload/*; do ln -s "$$PWD/$$f" build/typecheck/freeoffload/; done
	for p in $(PARTS); do ln -s "$$PWD/$$p" build/typecheck/freeoffload/$$p; done
	cd build/typecheck && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml -p freeoffload

pytest: install
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint pytest

clean:
	rm -rf $(VENV) build *.egg-info out
