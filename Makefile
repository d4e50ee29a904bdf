# promptq: `make run` starts a demo coordinator with a local worker;
# `make test` runs every suite (unit, API, and both again under ASan+UBSan).
BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-release

.PHONY: all bootstrap build asan release run test unit api bench bench-postgres fuzz chaos screenshots clean

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

$(BENCH_BUILD)/build.ninja:
	meson setup $(BENCH_BUILD) --buildtype=release -Db_ndebug=true

build: bootstrap $(BUILD)/build.ninja
	@ninja -C $(BUILD)

asan: bootstrap $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD)

run: build
	@scripts/run-demo $(BUILD)/promptq

# the release build is compiled too (not run): -O3 sees warnings -O2 does not
test: build asan release
	@scripts/check-layout > /dev/null || scripts/check-layout
	@scripts/run-tests $(BUILD) $(ASAN_BUILD)

release: bootstrap $(BENCH_BUILD)/build.ninja
	@ninja -C $(BENCH_BUILD)

unit: build
	@scripts/with-postgres meson test -C $(BUILD) --suite unit --print-errorlogs

api: build
	@PROMPTQ_BIN=$(BUILD)/promptq scripts/with-postgres /usr/bin/python3 -m pytest -q tests/api

bench: release
	@scripts/run-bench $(BENCH_BUILD)

# PostgreSQL: submits, drain over 1-3 coordinators, cross-coordinator dispatch, the NOTIFY trap
bench-postgres: release
	@scripts/run-bench-postgres $(BENCH_BUILD)
	@bench/pg-notify-trap

# the chaos test for CHAOS_SECONDS (make test runs it for about 25 s)
CHAOS_SECONDS ?= 300
chaos: build
	@CHAOS_SECONDS=$(CHAOS_SECONDS) PROMPTQ_BIN=$(BUILD)/promptq scripts/with-postgres \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/api/test_chaos.py

# each libFuzzer target for FUZZ_SECONDS (make test runs them for 20 s)
FUZZ_SECONDS ?= 300
fuzz: bootstrap
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-fuzz

# the browser test, keeping its pictures in docs/screenshots (shown in README and docs/dashboard.md)
screenshots: build
	@PROMPTQ_SCREENSHOTS=$(CURDIR)/docs/screenshots PROMPTQ_BIN=$(CURDIR)/$(BUILD)/promptq \
	  node --test tests/node/dashboard.test.js
	@for f in web/dashboard/*.html web/dashboard/*.js web/dashboard/*.css \
	    web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css; do \
	  printf '%-50s %7d bytes, %6d gzipped\n' $$f $$(wc -c < $$f) $$(gzip -9c $$f | wc -c); done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) build-fuzz
