# Run `make` or `make help` for the targets.
GO ?= go
PKGS := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@grep -hE '^[a-zA-Z/_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build ./fetcher
	$(GO) build -o fetcher ./cmd/fetcher

.PHONY: demo
demo: ## run the built-in end-to-end demo (nothing else needed)
	$(GO) run ./cmd/fetcher demo

.PHONY: test
test: lint third_party ## lint, then every test with the race detector (needs Postgres, see README)
	$(GO) test -race -count=1 $(PKGS)

# third_party/enmime is a patched copy of a dependency, a module of its own (so ./...
# above does not reach it): see docs/decisions/0014-patched-enmime-boundary-reader.md.
# Its tests include the differential tests of the patches against the original code,
# whose fuzz targets (package directory:target, in THIRD_PARTY_FUZZ) are also fuzzed
# briefly, one after the other; a failure of that fuzzing writes the input to testdata/fuzz/
# in the package's directory. Go 1.26's -fuzztime shutdown race is retried once, as in
# the fuzz target below.
THIRD_PARTY_FUZZTIME ?= 20s
THIRD_PARTY_FUZZ := .:FuzzBoundaryReaderMatchesOriginal \
	./internal/coding:FuzzQPCleanerMatchesOriginal \
	./internal/coding:FuzzQPDecoderMatchesOriginal

.PHONY: third_party
third_party: ## tests of the patched dependencies in third_party/
	cd third_party/enmime && $(GO) test -count=1 ./...
	@cd third_party/enmime && tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	for target in $(THIRD_PARTY_FUZZ); do dir=$${target%%:*}; name=$${target#*:}; \
	for try in 1 2; do \
		echo "== fuzz $$name in $$dir of third_party/enmime for $(THIRD_PARTY_FUZZTIME)"; \
		{ $(GO) test -run '^$$' -fuzz "^$${name}\$$" -fuzztime $(THIRD_PARTY_FUZZTIME) \
			-fuzzminimizetime $(FUZZMINIMIZETIME) "$$dir" 2>&1; echo $$? >"$$tmp/rc"; } | tee "$$tmp/out"; \
		rc=$$(cat "$$tmp/rc"); [ "$$rc" = 0 ] && break; \
		[ $$try = 1 ] && ! grep -q 'Failing input written' "$$tmp/out" && \
			grep -A1 -- "^--- FAIL: $$name " "$$tmp/out" | grep -qx '    context deadline exceeded' || exit $$rc; \
		echo "third_party: $$name hit Go's -fuzztime shutdown race (go.dev/issue/75804):" \
			"no input failed; running it once more"; \
	done; done

.PHONY: test/short
test/short: ## every test, without the race detector
	$(GO) test -count=1 $(PKGS)

.PHONY: lint
lint: ## gofmt, go vet, and golangci-lint when installed
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v golangci-lint >/dev/null; then golangci-lint run; \
		else echo "golangci-lint not installed; skipped (see .golangci.yml)"; fi

.PHONY: bench
bench: ## benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Fuzzing runs each target `go test -list` finds for FUZZTIME, one at a
# time (go test fuzzes one target of one package per run), so a new target
# needs no change here. FUZZMINIMIZETIME bounds the shrinking of each new
# input, and of a failing one: go test's default of 60 s would eat a short
# run.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is mid-call (go.dev/issue/75804,
# fixed in Go 1.27). That failure writes no input; a target that shows exactly
# it is fuzzed once more, and fails the run only if it shows it again.
FUZZTIME ?= 10s
FUZZMINIMIZETIME ?= 2s

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each, stop at the first failure
	@list=$$($(GO) test -vet=off -list '^Fuzz' $(PKGS)) || { echo "$$list"; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { names[n++] = $$1 } \
		/^ok / { for (i = 0; i < n; i++) print $$2, names[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz targets found"; exit 1; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	set -- $$targets; count=$$(($$# / 2)); start=$$(date +%s); \
	while [ $$# -gt 0 ]; do \
		pkg=$$1; name=$$2; shift 2; \
		for try in 1 2; do \
			echo "== fuzz $$name in $$pkg for $(FUZZTIME)"; \
			{ $(GO) test -run '^$$' -fuzz "^$${name}\$$" -fuzztime $(FUZZTIME) \
				-fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg 2>&1; echo $$? >"$$tmp/rc"; } | tee "$$tmp/out"; \
			[ "$$(cat "$$tmp/rc")" != 0 ] && [ $$try = 1 ] && ! grep -q 'Failing input written' "$$tmp/out" && \
				grep -A1 -- "^--- FAIL: $$name " "$$tmp/out" | grep -qx '    context deadline exceeded' || break; \
			echo "fuzz: $$name hit Go's -fuzztime shutdown race (go.dev/issue/75804, fixed in Go 1.27):" \
				"no input failed; running it once more"; \
		done; \
		if [ "$$(cat "$$tmp/rc")" != 0 ]; then \
			dir=$$($(GO) list -f '{{.Dir}}' $$pkg); dir=$${dir#$(CURDIR)/}; \
			input=$$(sed -n 's/^.*Failing input written to //p' "$$tmp/out" | head -1); \
			if [ -n "$$input" ]; then \
				echo "FAIL: fuzz target $$name ($$pkg) failed; the failing input is in $$dir/$$input" \
					"(rerun: go test -run '$$name/$${input##*/}' ./$$dir; commit it as a regression seed once fixed)"; \
			else \
				echo "FAIL: fuzz target $$name ($$pkg) failed without writing a new input: a seed" \
					"(f.Add or $$dir/testdata/fuzz/$$name/) or the build failed; see above"; \
			fi; \
			exit 1; \
		fi; \
	done; \
	echo "fuzz: all $$count targets passed, $(FUZZTIME) each, in $$(($$(date +%s) - start)) s"

# govulncheck, pinned (`go list -m -versions golang.org/x/vuln` lists the
# releases). Its database is FETCHER_VULNDB, else GOVULNDB (the variable
# older releases read), else https://vuln.go.dev: a mirror's URL or a
# file:// copy works too (govulncheck -db). When the network cannot reach
# the database the target says so loudly and passes; a finding (exit
# status 3) or any other failure fails. .ci/testdata/vulndb is a made-up
# one-entry database to check that: with FETCHER_VULNDB=file://$PWD/.ci/testdata/vulndb
# the target must fail.
GOVULNCHECK_VERSION ?= v1.9.0
GOVULNDB ?= https://vuln.go.dev
FETCHER_VULNDB ?= $(GOVULNDB)

.PHONY: vulncheck
vulncheck: ## govulncheck every package (database: FETCHER_VULNDB, default https://vuln.go.dev)
	$(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@bin=$$($(GO) env GOBIN); gopath=$$($(GO) env GOPATH); bin=$${bin:-$${gopath%%:*}/bin}; \
	out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	"$$bin/govulncheck" -db '$(FETCHER_VULNDB)' $(PKGS) >"$$out" 2>&1; rc=$$?; cat "$$out"; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 3 ] && grep -qE 'fetching vulnerabilities: .*(no such host|dial tcp|connection refused|network is unreachable|i/o timeout|TLS handshake timeout|connection reset)' "$$out"; then \
		echo "!!! VULNCHECK DID NOT RUN: the vulnerability database $(FETCHER_VULNDB) is unreachable from here." \
			"Run make vulncheck where vuln.go.dev is reachable, or point it at a mirror or a copy:" \
			"make vulncheck FETCHER_VULNDB=https://your-mirror or FETCHER_VULNDB=file:///path/to/vulndb"; \
		exit 0; \
	fi; \
	if [ $$rc -eq 3 ]; then echo "vulncheck: govulncheck found vulnerabilities (above)"; fi; \
	if grep -q 'unrecognized vulndb format' "$$out"; then \
		echo "vulncheck: govulncheck says this too when it cannot reach $(FETCHER_VULNDB): a mirror that is set must answer"; \
	fi; \
	exit $$rc
