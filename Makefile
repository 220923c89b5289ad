# synbatch: build, test against a real Synapse, demo.
GO      ?= go
# VERSION: the tag (v1.2.0), or else a Go pseudo-version of the commit, as
# `go install` would report; -dirty when the work tree has changes.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || { \
	v=$$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=v0.0.0-%cd-%H | cut -c1-34); \
	git diff --quiet HEAD -- 2>/dev/null || v=$$v+dirty; echo $$v; })
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# nfpm builds the Debian package; go run fetches this version through the
# module proxy (and caches it).
NFPM    ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
# RELEASE_ALLOW_MISSING: targets a release may leave out, reported (not
# silently); none by default: every target must build.
RELEASE_ALLOW_MISSING ?=
# RELEASE_TARGETS: GOOS/GOARCH pairs to build; empty builds every target.
RELEASE_TARGETS ?=

.PHONY: print-pg-tests print-pg-balance print-stop-tests build release deb image version image-tag test unit integration integration-pg integration-mas demo bench synapse-up synapse-down synapse-reset synapse-pg-up synapse-pg-down synapse-pg-reset synapse-mas-up synapse-mas-down synapse-mas-reset fuzz vet clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o synbatch .

# release: dist/ with an archive per target (binary, README, LICENSE,
# CHANGELOG, man page, completions), a .deb per linux target and
# SHA256SUMS. Two runs on one commit give the same SHA256SUMS.
release:
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./packaging/release \
		-version $(VERSION) -commit $(COMMIT) -out dist -nfpm "$(NFPM)" \
		-allow-missing "$(RELEASE_ALLOW_MISSING)" $(if $(RELEASE_TARGETS),-targets "$(RELEASE_TARGETS)")
	cat dist/SHA256SUMS

# deb: the Debian package for this machine's architecture only.
deb:
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./packaging/release \
		-version $(VERSION) -commit $(COMMIT) -out dist -nfpm "$(NFPM)" \
		-targets linux/$$($(GO) env GOARCH)

# image: the container image synbatch:$(VERSION) from the Dockerfile
# (FROM scratch: the static linux binary, CA certificates, a non-root user),
# built by buildah and exported as dist/synbatch-image.oci.tar.
BUILDAH   ?= buildah --storage-driver vfs
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_TAG ?= $(subst +,-,$(VERSION))
image:
	rm -rf dist/image && mkdir -p dist/image/work
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= $(LDFLAGS)" -o dist/image/synbatch .
	cp $(CA_BUNDLE) dist/image/ca-certificates.crt
	cp packaging/image/passwd packaging/image/group dist/image/
	$(BUILDAH) bud --arch $(IMAGE_ARCH) --timestamp $$(git log -1 --format=%ct) \
		-f Dockerfile -t synbatch:$(IMAGE_TAG) dist/image
	rm -f dist/synbatch-image.oci.tar
	$(BUILDAH) push synbatch:$(IMAGE_TAG) oci-archive:dist/synbatch-image.oci.tar:synbatch:$(IMAGE_TAG)

version:
	@echo $(VERSION)

image-tag:
	@echo $(IMAGE_TAG)

# test: unit tests, command-line scripts and the integration tier against a
# real Synapse (installed and started by scripts/synapse on first use). The
# integration tier fails, never skips, when the server is missing. Then apply,
# resume and the fault proxy again against Synapse on PostgreSQL.
test: synapse-up
	$(GO) vet ./...
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -parallel 8 -v ./integration/
	$(MAKE) --no-print-directory integration-pg
	$(MAKE) --no-print-directory integration-mas

# unit: everything that needs no server.
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration: synapse-up
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -parallel 8 -v ./integration/

# integration-pg: the apply, resume and fault-proxy tests against a second
# Synapse, on PostgreSQL (scripts/synapse --db postgres: port 18018, state in
# .synapse-pg). Not the tests that stop the server: they drive the SQLite one.
PG_TESTS := ^(TestCreateFromEachFormatThenNothingToWrite|TestSamplesAgreeAcrossFormats|TestUpdateUpsertAndMerge|TestGuardsKeepOtherUsersThreepidsAndIDs|TestBadManifestSendsNothing|TestXLSXNumericPhoneArrivesAsDigits|TestKillNineThenResume|TestFaultProxyCreatesEveryUserExactly|TestFaultProxyOneCreateNeverForwardedIsCreatedOnResume|TestFaultProxyPasswordUpdatesSettleOrStayUncertain|TestKillNineUnderFaultsThenResume)$$
integration-pg: synapse-pg-up
	set -a; . ./.synapse-pg/env; set +a; \
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 20m -parallel 8 -v -run '$(PG_TESTS)' ./integration/

# print-pg-tests: the -run pattern of integration-pg, for .ci/run.
print-pg-tests:
	@echo '$(PG_TESTS)'

# PG_BALANCE: long SQLite-tier tests that .ci/run runs on the PostgreSQL
# Synapse instead (still a real Synapse, still every commit), so that the
# two Synapse processes share the work: on SQLite alone they were the tier's
# longest poles while the PostgreSQL Synapse sat idle.
PG_BALANCE := ^(TestEuropeanExcelCSVOnboardsEveryField|TestRosterThreeMonthsInSync)$$
print-pg-balance:
	@echo '$(PG_BALANCE)'

# STOP_TESTS: the integration tests that stop and restart the Synapse they
# test (not parallel); .ci/run gives them a SQLite Synapse of their own.
STOP_TESTS := ^(TestSynapseStoppedForAMinuteMidRun|TestSynapseDownBehindProxyFailsNoRow)$$
print-stop-tests:
	@echo '$(STOP_TESTS)'

# integration-mas: the tests in ./integration/mas against the real Synapse in
# MAS mode beside the MAS stand-in (scripts/synapse --mas: Synapse on 18028,
# stand-in on 18040, state in .synapse-mas). A missing rig fails TestMain,
# and a skipped test fails the target: in CI a skip is not a pass.
integration-mas: synapse-mas-up
	@out=$$(mktemp); \
	SYNBATCH_REQUIRE_SYNAPSE=1 $(GO) test -count=1 -timeout 40m -v ./integration/mas/ >$$out 2>&1; rc=$$?; \
	cat $$out; \
	if grep -q -- '--- SKIP' $$out; then echo 'integration-mas: skipped tests count as failures:'; grep -- '--- SKIP' $$out; rc=1; fi; \
	rm -f $$out; exit $$rc

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

synapse-mas-up:
	@scripts/synapse --mas up >/dev/null

synapse-mas-down:
	@scripts/synapse --mas down

synapse-mas-reset:
	@scripts/synapse --mas reset

fuzz:
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzCSV -fuzztime 30s
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzJSONL -fuzztime 30s
	$(GO) test ./formats/ -run '^$$' -fuzz FuzzXLSX -fuzztime 30s

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

clean:
	rm -f synbatch
	rm -rf dist
