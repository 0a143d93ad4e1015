# QEMU 10.2.2 dirty-rate and COLO checkpoint recorder patch series.
#
#   make          deps, fetch, assemble, build, short demo
#   make check    build and run the qtests; ends with "N passed, M failed"
#   make tree     assembled tree in _work/qemu (quilt works there)
#   make refresh  write edits made in the tree back into patches/ and overlay
#   make series   git format-patch series in _work/series, verified
#   make checkpatch  scripts/checkpatch.pl on every patch and overlay file
#   make docs     QEMU's HTML manual and man pages with Sphinx in
#                 _work/qemu/build-docs; fails on any Sphinx warning
#   make bench    unpatched vs patched measurements, report in bench/results
#   make bench-quick  the same in under ~10 minutes, report in _work/bench-quick
#   make check-sanitizers  ASan+UBSan build in _work/qemu/build-san, the
#                 qtests against it; fails on any sanitizer report
#   make check-series  every patch of the exported series applied in turn
#                 on the pristine base, built, and its qtests run where
#                 they exist (check-series-build: build only)
#
# Everything generated lives below _work/ (WORK=... to move it).

WORK ?= $(CURDIR)/_work
export WORK

QTESTS = dirtyrate-test colo-recorder-test

.PHONY: all deps fetch tree build demo check refresh series checkpatch \
	docs base bench bench-quick build-san check-sanitizers check-series \
	check-series-build clean distclean

all: build
	@scripts/demo.py

deps:
	@scripts/install-deps.sh

fetch: deps
	@scripts/fetch-base.sh >/dev/null

tree: fetch
	@scripts/assemble.sh

build: tree
	@scripts/build.sh qemu-system-x86_64 \
		$(addprefix tests/qtest/,$(QTESTS))

demo:
	@scripts/demo.py

check: build
	@scripts/check.py $(QTESTS)

# AddressSanitizer (with LeakSanitizer) + UndefinedBehaviorSanitizer build
# of the same assembled tree, in its own build directory; not part of check
SAN_BUILD = build-san

build-san: tree
	@BUILD_DIR=$(SAN_BUILD) SANITIZERS="asan ubsan" scripts/build.sh \
		qemu-system-x86_64 $(addprefix tests/qtest/,$(QTESTS))

check-sanitizers: build-san
	@BUILD=$(SAN_BUILD) scripts/check.py --sanitizers $(QTESTS)

check-series: fetch
	@scripts/check-series.sh

check-series-build: fetch
	@scripts/check-series.sh --build-only

refresh:
	@scripts/refresh.sh

series: fetch
	@scripts/export-series.sh

checkpatch: tree
	@scripts/checkpatch.sh

# QEMU's documentation (configure --enable-docs, nothing else built) in its
# own build directory; Sphinx runs with -W
DOCS_BUILD = build-docs

docs: tree
	@BUILD_DIR=$(DOCS_BUILD) scripts/build-docs.sh

# The unpatched base, built the same way, for make bench
base: fetch
	@scripts/build-base.sh

BENCH = /usr/bin/python3 bench/run.py \
	--base $(WORK)/base/build/qemu-system-x86_64 \
	--patched $(WORK)/qemu/build/qemu-system-x86_64 \
	--hook-bench $$(bench/build-hook-bench.sh $(WORK)/qemu/build) \
	$(if $(BENCH_ONLY),--only $(BENCH_ONLY))

bench: build base
	@$(BENCH) --command "make bench"

bench-quick: build base
	@$(BENCH) --quick --command "make bench-quick" --out $(WORK)/bench-quick

clean:
	rm -rf $(WORK)/qemu/build $(WORK)/qemu/$(SAN_BUILD) \
		$(WORK)/qemu/$(DOCS_BUILD) $(WORK)/base/build $(WORK)/stage $(WORK)/series

distclean:
	rm -rf $(WORK)
