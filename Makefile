# Strata — `make help` lists the targets. `make test` is what CI runs (.ci/run).

GO       ?= go
BIN      ?= bin/strata
FUZZTIME ?= 30s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Extra flags for `make run`, e.g. make run ARGS='--num.partitions=3'
ARGS     ?=

SHELL         := /bin/bash
.SHELLFLAGS   := -eu -o pipefail -c
.DEFAULT_GOAL := help
.PHONY: help build run test lint bench fuzz clean

help: ## list the targets
	@echo 'Usage: make <target>'
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-7s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/strata
	$(GO) build -ldflags '-X main.version=$(VERSION)' -o $(BIN) ./cmd/strata

run: build ## build, then run one broker on the defaults (Kafka 127.0.0.1:9092, HTTP 127.0.0.1:9644, data in ./strata-data)
	$(BIN) serve $(ARGS)

test: ## install missing test dependencies (kcat, Python clients, kafkajs), then run every test
	@if [ -f scripts/install-test-deps.sh ]; then bash scripts/install-test-deps.sh; fi
	$(GO) test ./... -count=1 -timeout 40m

lint: ## go vet, staticcheck and gofmt
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@unformatted="$$(find . \( -name .git -o -name node_modules -o -name testdata \) -prune -o -name '*.go' -print | xargs gofmt -l)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

bench: ## start Strata and print the performance tables (produce/consume MiB/s, latency, RSS, groups, tiering, cluster metadata propagation and controller failover; beside machine limits)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m -v ./e2e/bench/...

fuzz: ## run every fuzz target for FUZZTIME (30s) each
	@targets="$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ {n[++c] = $$1; next} /^ok/ {for (i = 1; i <= c; i++) print $$2 " " n[i]; c = 0}')"; \
	if [ -z "$$targets" ]; then echo "no fuzz targets found"; exit 1; fi; \
	echo "$$targets" | while read -r pkg name; do \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test "$$pkg" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s; \
	done

clean: ## remove bin/ (never the data directory)
	rm -rf bin
