# Vigil — one command surface for people and CI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean tools

install: $(STAMP) tools

# The real consumers of the intel exports, used by the tests to check the files (nft for the
# nftables set, named-checkzone for the RPZ zone, ipset and iptables for the blocklist scripts). Installed from Debian when running as root;
# elsewhere the tests that need them say they were skipped and why.
tools:
	@if ! command -v nft >/dev/null 2>&1 || ! command -v named-checkzone >/dev/null 2>&1 || \
	    ! command -v ipset >/dev/null 2>&1 || ! command -v iptables >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables bind9-utils ipset iptables >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables bind9-utils ipset iptables >/dev/null 2>&1) || \
	    echo "note: could not install nftables, bind9-utils, ipset, iptables; export checks will be skipped"; \
	  else echo "note: nft / named-checkzone / ipset / iptables missing; export checks will be skipped"; fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/vigil demo

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	cd bench && ../$(BIN)/python ingest.py && ../$(BIN)/python detect.py && ../$(BIN)/python stream.py && ../$(BIN)/python api.py && ../$(BIN)/python intel.py

clean:
	rm -rf $(VENV) vigil-data .mypy_cache .ruff_cache
