# Veil build, demo and test targets. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 5s
BENCHTIME ?= 1s
BENCHCOUNT ?= 5

.PHONY: all build run demo test deps lint race unit e2e fuzz bench bench-sip clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

# run starts veild with the loopback default config. The admin token comes
# from VEIL_ADMIN_TOKEN and the carriers' SMPP password from
# VEIL_SMPP_PASSWORD (throwaway ones are used when unset).
run: build
	VEIL_ADMIN_TOKEN=$${VEIL_ADMIN_TOKEN:-dev-token} VEIL_SMPP_PASSWORD=$${VEIL_SMPP_PASSWORD:-secret} ./bin/veild -config configs/veil.yaml

demo: build
	./scripts/demo.sh

# test: everything CI checks — install what is missing, lint, then every
# test with the race detector (inside a loopback-only network namespace
# when the machine allows it), then a short fuzz smoke.
test: deps lint
	./scripts/netns.sh $(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

deps:
	./scripts/deps.sh

lint: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

race:
	./scripts/netns.sh $(GO) test -race -count=1 ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: build
	./scripts/netns.sh $(GO) test -count=1 -v ./e2e/

# fuzz runs every fuzz target for FUZZTIME (make fuzz FUZZTIME=5m for a
# real session). Crashers are written under the package's testdata/fuzz/.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench:
	./scripts/netns.sh $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 60m ./bench/ | tee bench/last-run.txt

# bench-sip: SIPp calls through the real veild, ramped until a step fails
# (bench/sipload.sh; RATES, DURATION, HOLD_MS from the environment).
bench-sip:
	./bench/sipload.sh

clean:
	rm -rf bin data
