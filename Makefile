# Stampede: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

BIN      := $(CURDIR)/bin
STAMPEDE := $(BIN)/stampede
GO_PKGS  := ./...

.PHONY: help
help: ## help: list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / { split($$2, a, ": "); printf "  \033[1m%-18s\033[0m %s\n", $$1, substr($$2, length(a[1]) + 3) }' $(MAKEFILE_LIST)

.PHONY: build
build: ## build: build bin/stampede (the CLI and every platform process)
	go build -o $(STAMPEDE) ./cmd/stampede

# stampede-temporal reaches database/sql's driver registry by name to put a
# statement cache around the SQLite driver (cmd/stampede-temporal/stmtcache.go),
# which the linker allows only with this flag.
TEMPORAL_LDFLAGS = -ldflags=-checklinkname=0

.PHONY: temporal
temporal: ## temporal: build bin/stampede-temporal, the embedded Temporal server (slow the first time)
	@if [ ! -x $(BIN)/stampede-temporal ] || [ -n "$$(find cmd/stampede-temporal -newer $(BIN)/stampede-temporal -name '*.go' -o -newer $(BIN)/stampede-temporal -name go.mod | head -1)" ]; then \
		echo "building bin/stampede-temporal (the Temporal server; several minutes cold on 2 cores)"; \
		cd cmd/stampede-temporal && go build $(TEMPORAL_LDFLAGS) -o $(BIN)/stampede-temporal . ; \
	fi

.PHONY: k6
k6: ## k6: build bin/k6 with the xk6-orders extension (a few minutes cold)
	cd xk6-orders && go build -o $(BIN)/k6 ./cmd/k6

.PHONY: load
load: build k6 ## load: run SCENARIO=baseline|black-friday|spike|soak against the stack; writes results/<run>/
	@[ -n "$(SCENARIO)" ] || { echo "usage: make load SCENARIO=black-friday [DURATION=3m BASE_RATE=4 ...]"; exit 2; }
	SCENARIO=$(SCENARIO) ./scripts/load.sh

.PHONY: dashboards-check
dashboards-check: build k6 ## dashboards-check: short k6 load, then prove every dashboard panel returns data from the live Prometheus
	SCENARIO=baseline DURATION=$(or $(DASHBOARDS_LOAD),60s) RUN=dashboards-check-$$(date -u +%Y%m%dT%H%M%SZ) ./scripts/load.sh \
		|| echo "dashboards-check: k6 thresholds failed; checking the dashboards anyway"
	$(STAMPEDE) dashboards check --window $(or $(DASHBOARDS_WINDOW),20m) $(if $(ALLOW_EMPTY),--allow-empty '$(ALLOW_EMPTY)')

.PHONY: up
up: build temporal ## up: start the whole stack on 127.0.0.1 (installs what is missing)
	$(STAMPEDE) up

.PHONY: down
down: ## down: stop everything up started (data kept; `bin/stampede down --wipe` deletes it)
	@if [ -x $(STAMPEDE) ]; then $(STAMPEDE) down; else echo "nothing to stop: bin/stampede is not built"; fi

.PHONY: status
status: build ## status: show every component of the stack
	$(STAMPEDE) status

.PHONY: demo
demo: up ## demo: start the stack, place sample orders, print the ports and where to look
	$(STAMPEDE) demo

.PHONY: test
test: build temporal k6 test-unit ## test: unit tests, then integration tests against the real stack (started and stopped here)
	./scripts/integration.sh

.PHONY: images
images: build ## images: build the platform's container images locally with Podman or Docker, no registry (`bin/stampede images --help`)
	$(STAMPEDE) images build

.PHONY: test-containers
test-containers: images ## test-containers: [RUN=regexp] place orders on the platform started in containers by stampedetest (testcontainers-go); starts Podman's Docker API unless DOCKER_HOST is set
	./scripts/test-containers.sh

.PHONY: test-unit
test-unit: ## test-unit: unit tests of every module (kfake, Temporal test suite, k6 module runtime; no stack needed)
	go test -count=1 $(GO_PKGS)
	cd xk6-orders && go test -count=1 ./...
	cd cmd/stampede-temporal && go test $(TEMPORAL_LDFLAGS) -count=1 ./...

# Every Go fuzz test of the platform, as package:FuzzName (found, not listed by hand).
FUZZ_TESTS = $(shell grep -ro --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' platform | sed 's|/[^/]*_test.go:func |:|' | sort)
FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: ## fuzz: [FUZZTIME=60s] run every fuzz test (Orders, strict decoders, event envelope, analytics patterns) for FUZZTIME each, one after the other, -parallel 1 under nice; a crasher is saved in its package's testdata/fuzz and fails the target
	@failed=""; for t in $(FUZZ_TESTS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		nice -n 19 go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 1 ./$$pkg || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashers in:$$failed (see testdata/fuzz of their packages)"; exit 1; fi

.PHONY: lint
lint: ## lint: gofmt and go vet on every module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet $(GO_PKGS)
	@for m in cmd/stampede-temporal xk6-orders stampedetest; do if [ -f $$m/go.mod ]; then (cd $$m && go vet -tags containers ./...) || exit 1; fi; done

.PHONY: chaos
chaos: up k6 ## chaos: PROFILE=short|full [SEED=N CHAOS_FLAGS=...]: kill Payments under 5x load, audit every order, exit 0 only if every gate holds
	$(STAMPEDE) chaos --profile $(or $(PROFILE),short) --seed $(or $(SEED),1) $(CHAOS_FLAGS)

.PHONY: chaos-selftest
chaos-selftest: up k6 ## chaos-selftest: [SUBSET=ci] [MUTATIONS=a,b] [SEED=N CHAOS_FLAGS=...]: one clean short run first, then each mutation (a failpoint-armed defect) with its shortest schedule; pass only if every mutation fails its expected gate and the clean run passes
	$(STAMPEDE) chaos selftest --subset $(or $(SUBSET),all) --seed $(or $(SEED),1) $(if $(MUTATIONS),--mutations $(MUTATIONS)) $(CHAOS_FLAGS)

.PHONY: clean
clean: ## clean: remove bin/ (keeps .stampede/ data and results/)
	rm -rf $(BIN)

.PHONY: bench
bench: build ## bench: measure the running stack (Orders accept latency, commit -> visible); writes results/bench/
	$(STAMPEDE) bench orders --rate 50 --duration 60s
