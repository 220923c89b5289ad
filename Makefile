# synbatch: build, test against a real Synapse, demo.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test unit integration demo bench synapse-up synapse-down synapse-reset fuzz vet clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o synbatch .

# test: unit tests, command-line scripts and the integration tier against a
# real Synapse (installed and started by scripts/synapse on first use). The
# integration tier fails, never skips, when the server is missing.
test: synapse-up
	$(GO) vet ./...
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -v ./integration/

# unit: everything that needs no server.
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration: synapse-up
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -v ./integration/

# demo: a local Synapse with the sample users in it.
demo: build synapse-up
	@set -a; . ./.synapse/env; set +a; \
	echo "$$ synbatch validate samples/users.csv"; ./synbatch validate samples/users.csv && \
	echo "$$ synbatch apply samples/users.csv --list"; ./synbatch apply samples/users.csv --list --journal .synapse/demo.journal.jsonl; \
	echo "The sample users are on $$SYNBATCH_SERVER; run 'make demo' again to see every row unchanged."

# bench: client overhead, memory, resume and real-Synapse throughput (takes
# several minutes); the figures replace BENCHMARKS.md only when all ran.
bench: synapse-up
	$(GO) run ./bench > BENCHMARKS.md.new
	mv BENCHMARKS.md.new BENCHMARKS.md
	cat BENCHMARKS.md

synapse-up:
	@scripts/synapse up >/dev/null

synapse-down:
	@scripts/synapse down

synapse-reset:
	@scripts/synapse reset

fuzz:
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzCSV -fuzztime 30s
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzJSONL -fuzztime 30s
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzXLSX -fuzztime 30s

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

clean:
	rm -f synbatch
