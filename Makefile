# dunning: `make run` starts everything locally, `make test` checks it all.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Tools are built from the Go module proxy, pinned, into a git-ignored folder.
TOOLS_DIR ?= $(CURDIR)/.tools
TEMPORAL_CLI_VERSION := v1.5.1
STRIPE_MOCK_VERSION := v0.203.0
STATICCHECK_VERSION := v0.7.0
WORKFLOWCHECK_VERSION := v0.6.0
# The Temporal server the CLI embeds, run by `make test-cluster` on
# PostgreSQL; docker-compose.yml runs the same version (temporalio/server).
TEMPORAL_SERVER_VERSION := v1.29.1

TEMPORAL_CLI := $(TOOLS_DIR)/temporal-$(TEMPORAL_CLI_VERSION)/temporal
STRIPE_MOCK := $(TOOLS_DIR)/stripe-mock-$(STRIPE_MOCK_VERSION)/stripe-mock
STATICCHECK := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
WORKFLOWCHECK := $(TOOLS_DIR)/workflowcheck-$(WORKFLOWCHECK_VERSION)/workflowcheck
TEMPORAL_SERVER := $(TOOLS_DIR)/temporal-server-$(TEMPORAL_SERVER_VERSION)/temporal-server
TEMPORAL_SQL_TOOL := $(TOOLS_DIR)/temporal-server-$(TEMPORAL_SERVER_VERSION)/temporal-sql-tool

DUNNING := $(CURDIR)/bin/dunning
GO_TEST_FLAGS ?= -race -timeout 25m

export TEMPORAL_CLI STRIPE_MOCK TEMPORAL_SERVER

.PHONY: help
help:
	@echo "make run     run the whole stack locally (Temporal dev server + UI, stripe-mock, worker, webhook)"
	@echo "make test    vet, staticcheck, workflowcheck and every test with -race"
	@echo "make bench   benchmarks"
	@echo "make soak    the chaos soak: SOAK_DURATION (10m) of traffic while processes, Temporal and peers fail, then an audit"
	@echo "make test-cluster  the production profile: a Temporal cluster on PostgreSQL, two workers, two webhooks"
	@echo "make tools   build the pinned tools into $(TOOLS_DIR)"

# go install writes into GOBIN; each tool gets a folder named by its version,
# so a version bump builds anew and an interrupted build leaves nothing
# behind. $(TOOLS_DIR)/bin holds links to the pinned versions.
define go-install
	@echo "building $(2) (once; cached in $(TOOLS_DIR))"
	@mkdir -p $(dir $(1)).tmp $(TOOLS_DIR)/bin
	GOBIN=$(dir $(1)).tmp go install $(2)
	@mv $(dir $(1)).tmp/$(notdir $(1)) $(1) && rmdir $(dir $(1)).tmp
	@ln -sfn $(1) $(TOOLS_DIR)/bin/$(notdir $(1))
endef

$(TEMPORAL_CLI):
	$(call go-install,$@,github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION))
$(STRIPE_MOCK):
	$(call go-install,$@,github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION))
$(STATICCHECK):
	$(call go-install,$@,honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))
$(WORKFLOWCHECK):
	$(call go-install,$@,go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION))

# The server and its SQL tool come from one module at one version; the
# build tag is the one the server's own Makefile builds with.
$(TEMPORAL_SERVER):
	@echo "building temporal-server and temporal-sql-tool $(TEMPORAL_SERVER_VERSION) (once; cached in $(TOOLS_DIR))"
	@rm -rf $(dir $@).tmp && mkdir -p $(dir $@).tmp
	CGO_ENABLED=0 GOBIN=$(dir $@).tmp go install -tags disable_grpc_modules \
		go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) \
		go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	@mv $(dir $@).tmp/sql $(TEMPORAL_SQL_TOOL) && mv $(dir $@).tmp/server $@ && rmdir $(dir $@).tmp

# The compose tests render the Temporal server's configuration with the
# server itself, so the tests need it too.
.PHONY: tools
tools: $(TEMPORAL_CLI) $(STRIPE_MOCK) $(STATICCHECK) $(WORKFLOWCHECK) $(TEMPORAL_SERVER)

.PHONY: build
build:
	go build -o $(DUNNING) ./cmd/dunning

.PHONY: run
run: $(TEMPORAL_CLI) $(STRIPE_MOCK) build
	$(DUNNING) dev

.PHONY: lint
lint: $(STATICCHECK) $(WORKFLOWCHECK)
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	go vet -tags soak ./...
	$(STATICCHECK) -tags soak ./...
	$(WORKFLOWCHECK) ./...

FUZZ_TIME ?= 30s

.PHONY: test
test: tools lint
	go test $(GO_TEST_FLAGS) ./...
	go test -run '^$$' -fuzz '^FuzzWebhook$$' -fuzztime $(FUZZ_TIME) ./webhook

# The production profile, for real: a Temporal server built from the module
# proxy on this machine's PostgreSQL (installed if absent; a throwaway
# cluster under a temporary folder), schemas and namespace set up with the
# scripts docker-compose.yml runs, then two workers and two webhooks driven
# through recoveries while one worker is killed. deploy/cluster.sh stops
# everything it started; logs stay in .data/cluster.
.PHONY: test-cluster
test-cluster: $(TEMPORAL_CLI) $(TEMPORAL_SERVER) build
	TEMPORAL_SERVER=$(TEMPORAL_SERVER) TEMPORAL_SQL_TOOL=$(TEMPORAL_SQL_TOOL) \
		DUNNING_BIN=$(DUNNING) deploy/cluster.sh

# The chaos soak (docs/reliability.md): two workers and two webhooks from
# bin/dunning, a Temporal dev server on a SQLite file, stateful stand-ins
# for the peers; steady traffic while processes, the server and peers fail;
# then a drain, an audit and one summary line. Logs stay in .data/soak.
# SOAK_TIMEOUT bounds the whole run (traffic, drain and audit).
SOAK_DURATION ?= 10m
SOAK_TIMEOUT ?= 3h
export SOAK_DURATION

.PHONY: soak
soak: $(TEMPORAL_CLI) build
	DUNNING_BIN=$(DUNNING) go test -tags soak -run '^TestSoak$$' -count=1 -v -timeout $(SOAK_TIMEOUT) ./soak

# Benchmarks against a real dev server; each runs its workload once.
# Sizes: BENCH_EVENTS, BENCH_E2E_EVENTS, BENCH_CONCURRENCY, BENCH_ROUNDS, BENCH_RATE,
# BENCH_SECONDS, BENCH_SCALE_SMALL, BENCH_SCALE_LARGE, BENCH_RECONCILE_EVENTS
# (docs/benchmarks.md).
.PHONY: bench
bench: tools
	go test -run '^$$' -bench BenchmarkWebhook -benchmem ./webhook
	go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench

.PHONY: clean
clean:
	rm -rf bin .data
