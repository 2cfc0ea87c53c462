# intercomd build and test entry points. `make test` runs every tier and, as
# root on Debian 12, installs what the tiers need first.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS    := ./...

.PHONY: all build run check test test-unit test-race test-kernel bench fmt vet clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/intercomd ./cmd/intercomd

# Runs the daemon with the embedded defaults: broker, test-pattern camera and
# null audio when no hardware is found, simulated buttons.
run: build
	./bin/intercomd run

test: test-deps vet test-unit test-kernel test-service

# The fast loop for developers: gofmt, vet and the unit tests (-short) of
# the packages that need no QEMU, no browser and no Debian packages beyond
# the build's own. The packaging, real-kernel, web (Chromium) and daemon
# (child processes) tests and the media tests (real pion calls, 90 s on a
# loaded 2-core machine) are left to `make test`.
CHECK_PKGS = $$($(GO) list ./... | grep -v -e /packaging -e /test/vm -e '/web$$' -e /web/bridge -e /cmd/intercomd -e /homeassistant -e '/media$$')
check: vet
	$(GO) test -short -count=1 -timeout 5m $(CHECK_PKGS)

test-deps:
	scripts/test-deps

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)

# One test binary at a time: the media, browser and broker tests measure
# real time on a 2-core machine and must not starve each other.
test-unit:
	$(GO) build ./... && $(GO) test -p 1 -count=1 -timeout 20m $(PKGS)

test-race:
	$(GO) test -race -count=1 $(PKGS)

# The real-kernel tier: Debian's kernel under QEMU with vivid, snd-aloop and
# gpio-sim; see test/vm/README.md.
test-kernel:
	@if [ -x test/vm/run ]; then test/vm/run; else echo "test-kernel: test/vm/run missing"; exit 1; fi

# The benchmarks named in the docs, with the iteration counts they report.
bench:
	$(GO) test -run '^$$' -bench Step -benchtime 2s ./calling/
	$(GO) test -run '^$$' -bench InviteToRinging -benchtime 200x ./endpoint/
	$(GO) test -run '^$$' -bench ButtonToAccept -benchtime 100x ./cmd/intercomd/
	$(GO) test -run '^$$' -bench . -benchtime 50x ./media/
	$(GO) test -run '^$$' -bench PostToFirstFrame -benchtime 50x ./media/whep/
	$(GO) test -run '^$$' -bench StartToReady -benchtime 10x ./packaging/

include packaging/rules.mk

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist
