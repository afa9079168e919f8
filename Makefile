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
test: lint ## lint, then every test with the race detector (needs Postgres, see README)
	$(GO) test -race -count=1 $(PKGS)

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
