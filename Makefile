# Virga's developer commands. `make test` is the one command that checks everything.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

# Debian's interpreter, not whatever `python3` is first on PATH: Ceph's rados/rbd bindings
# are built for it.
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
# Lives inside the venv, so deleting .venv also forgets the install.
VENV_STAMP := $(VENV)/.installed
KAFKA_PORT ?= 9092
DEVSTACK := $(BIN)/python -m virga_devstack

.PHONY: deps venv lint typecheck test web web-check kafka-jars ceph-bindings kafka-up kafka-down libvirt-up need-root up down bench

# Debian packages (deploy/debian-packages.txt): installs only what is missing, as root.
deps:
	bash deploy/install-deps.sh

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml | deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check
	$(BIN)/ruff format --check

typecheck: venv
	$(BIN)/mypy

# The jars are fetched here rather than inside the first Kafka test, so that the download
# does not count against that test's timeout.
kafka-jars: venv
	$(DEVSTACK) kafka ensure-jars

# Debian's rados/rbd modules (python3-rados, python3-rbd) made importable from the venv by a
# .pth naming a directory of links to just those two; redone each time, as the packages may
# have been installed after the venv was made.
ceph-bindings: venv
	$(DEVSTACK) ceph link-bindings

# The web console (web/): `npm ci` from the committed lock, then the type check and the build,
# skipped when web/dist was built from the same inputs (web/build.sh keeps their hash).
web:
	bash web/build.sh

# Its checks: TypeScript's type check, eslint, and vitest's unit tests.
web-check:
	bash web/deps.sh
	cd web && npm run --silent typecheck && npm run --silent lint && npm run --silent test

test: deps lint typecheck web web-check kafka-jars ceph-bindings
	$(BIN)/python -m pytest

kafka-up: venv
	$(DEVSTACK) kafka start --port $(KAFKA_PORT)

kafka-down: venv
	$(DEVSTACK) kafka stop --port $(KAFKA_PORT)

libvirt-up: venv
	$(DEVSTACK) libvirt start

# The whole local stack, as root: Kafka, Ceph, virtlogd and libvirtd, every service (a compute
# and a network agent for this host), the gateway on 127.0.0.1:8080, and Virga's guest image
# seeded as a public image, and an external network on a bridge of the host (vgext,
# 203.0.113.1/24: the host plays the internet). Detached; a second `make up` only checks.
# `make up FOREGROUND=1` stays and stops on Ctrl-C all it started; Ctrl-C while it starts stops
# what it started so far. `make down` stops by pid what `make up` started; `make down ALL=1`
# stops Ceph too, and deletes the external network `public` and its bridge vgext.
need-root:
	@if [ "$$(id -u)" -ne 0 ]; then \
	    echo "make up needs root: it installs Debian packages (apt-get), starts virtlogd and" >&2; \
	    echo "libvirtd for qemu:///system guests, and its network agent makes bridges, VXLAN" >&2; \
	    echo "and taps over netlink. Run it as root (e.g. sudo make up)." >&2; \
	    exit 1; \
	fi

up: need-root kafka-jars ceph-bindings web
	$(DEVSTACK) stack up --kafka-port $(KAFKA_PORT) $(if $(FOREGROUND),--foreground)

down: venv
	$(DEVSTACK) stack down --kafka-port $(KAFKA_PORT) $(if $(ALL),--all)

# The headline figures in one table, each beside a baseline measured in the same run, on a
# broker of its own (docs/performance.md). QUICK=1: a tenth of every size, to try the suite.
# `deps` first, as for `test`: a package added to deploy/debian-packages.txt (wrk) is installed.
bench: deps kafka-jars
	$(BIN)/python bench/suite.py $(if $(QUICK),--quick)
