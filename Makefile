# synbatch: build, test against a real Synapse, demo.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test unit integration integration-pg demo bench synapse-up synapse-down synapse-reset synapse-pg-up synapse-pg-down synapse-pg-reset fuzz vet clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o synbatch .

# test: unit tests, command-line scripts and the integration tier against a
# real Synapse (installed and started by scripts/synapse on first use). The
# integration tier fails, never skips, when the server is missing. Then apply,
# resume and the fault proxy again against Synapse on PostgreSQL.
test: synapse-up
	$(GO) vet ./...
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -v ./integration/
	$(MAKE) --no-print-directory integration-pg

# unit: everything that needs no server.
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration: synapse-up
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -v ./integration/

# integration-pg: the apply, resume and fault-proxy tests against a second
# Synapse, on PostgreSQL (scripts/synapse --db postgres: port 18018, state in
# .synapse-pg). Not the tests that stop the server: they drive the SQLite one.
PG_TESTS := ^(TestCreateFromEachFormatThenNothingToWrite|TestSamplesAgreeAcrossFormats|TestUpdateUpsertAndMerge|TestGuardsKeepOtherUsersThreepidsAndIDs|TestBadManifestSendsNothing|TestXLSXNumericPhoneArrivesAsDigits|TestKillNineThenResume|TestFaultProxyCreatesEveryUserExactly|TestFaultProxyOneCreateNeverForwardedIsCreatedOnResume|TestFaultProxyPasswordUpdatesSettleOrStayUncertain|TestKillNineUnderFaultsThenResume)$$
integration-pg: synapse-pg-up
	set -a; . ./.synapse-pg/env; set +a; \
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 20m -v -run '$(PG_TESTS)' ./integration/

# demo: a local Synapse with the sample users in it.
demo: build synapse-up
	@set -a; . ./.synapse/env; set +a; \
	echo "$$ synbatch validate samples/users.csv"; ./synbatch validate samples/users.csv && \
	echo "$$ synbatch apply samples/users.csv --list"; ./synbatch apply samples/users.csv --list --journal .synapse/demo.journal.jsonl; \
	echo "The sample users are on $$SYNBATCH_SERVER; run 'make demo' again to see every row unchanged."

# bench: client overhead, memory, resume, and real Synapse on SQLite and on
# PostgreSQL beside Debian's synadm (installed when missing), with a projection
# to a million users (takes half an hour); the figures replace BENCHMARKS.md
# only when all ran.
bench: synapse-up synapse-pg-up
	$(GO) run ./bench > BENCHMARKS.md.new
	mv BENCHMARKS.md.new BENCHMARKS.md
	cat BENCHMARKS.md

synapse-up:
	@scripts/synapse up >/dev/null

synapse-down:
	@scripts/synapse down

synapse-reset:
	@scripts/synapse reset

synapse-pg-up:
	@scripts/synapse --db postgres up >/dev/null

synapse-pg-down:
	@scripts/synapse --db postgres down

synapse-pg-reset:
	@scripts/synapse --db postgres reset

fuzz:
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzCSV -fuzztime 30s
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzJSONL -fuzztime 30s
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzXLSX -fuzztime 30s

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

clean:
	rm -f synbatch
