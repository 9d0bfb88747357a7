# Chuanyu Gateway — the same commands everywhere (README, CI).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUF    := node_modules/.bin/buf

.PHONY: install demo test check proto certs bench soak fuzz browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP)

## make demo: two nodes, real certificates, every record type both ways (work dir .demo/)
demo: $(STAMP)
	$(BIN)/chuanyu-gateway demo --workdir .demo

# The browser tests drive Debian's Chromium (Playwright cannot download its own here); CJK
# fonts make their screenshots readable.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	fc-list 2>/dev/null | grep -qi "noto sans cjk" || apt-get install -y fonts-noto-cjk || true

## make test: the whole suite (unit, golden files, end to end over loopback, browser)
test: $(STAMP) browser
	$(BIN)/pytest

## make check: formatting, lint, types, import contracts, wire-contract lint
check: $(STAMP) $(BUF)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	# Test folders have no packages (pytest imports them by path): one mypy run each.
	for d in tests/unit tests/adapters tests/e2e tests/store tests/console; do MYPYPATH=$$d:tests/e2e $(BIN)/mypy $$d || exit 1; done
	$(BUF) lint

## make proto: regenerate chuanyu/ (Python, gRPC, mypy stubs) from proto/
proto: $(STAMP)
	$(BIN)/python tools/genproto.py

## make certs: a development PKI in certs/ (keys stay out of git)
certs: $(STAMP)
	$(BIN)/chuanyu-gateway certs init certs

## make bench: node throughput against a bare gRPC baseline, as a ratio
bench: $(STAMP)
	$(BIN)/python -m bench

KILLS   ?= 20
RECORDS ?= 20000
## make soak: SIGKILL either node at random moments during a long exchange; 0 lost / 0 doubled
soak: $(STAMP)
	$(BIN)/python tools/crashkit.py soak --kills $(KILLS) --records $(RECORDS)

## make fuzz: the property-based fuzzers with a long budget (minutes, not seconds)
fuzz: $(STAMP)
	CHUANYU_FUZZ_EXAMPLES=20000 $(BIN)/pytest tests/e2e/test_fuzz.py -k fuzz

clean:
	rm -rf .demo .bench test-output .pytest_cache .mypy_cache .ruff_cache
