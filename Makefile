# Gatehouse — `make run` runs the whole stack on http://localhost:8080,
# `make test` runs every test against private Postgres and Redis servers.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(PATH)

# Every module in go.work, and the services among them (a dir with main.go).
MODULES  := $(shell go list -m -f '{{.Dir}}' 2>/dev/null | sed "s|^$(CURDIR)/||")
SERVICES := $(foreach s,proxy backend authsvc web,$(if $(wildcard $(s)/main.go),$(s)))
BINARIES := $(addprefix bin/,$(SERVICES))
PKGS     := $(addsuffix /...,$(addprefix ./,$(MODULES)))

GO_TEST_FLAGS ?= -race -count=1 -timeout 12m
BENCH_FLAGS   ?= -run '^$$' -bench . -benchmem -count 6

.PHONY: all build run test test-short lint fmt bench fuzz clean tidy FORCE
all: build

build: $(BINARIES) bin/devenv

# Static, reproducible binaries; go decides what is stale.
bin/%: FORCE
	@mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -o $@ ./$*

bin/devenv: FORCE
	@mkdir -p bin
	go build -o $@ ./kit/cmd/devenv

run: build
	bin/devenv run -state .run -bin bin

# Every test, with the race detector, against one private Postgres and Redis
# (started and removed by devenv, on free loopback ports).
test: lint build
	bin/devenv test -- go test $(GO_TEST_FLAGS) $(PKGS)

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

fmt:
	gofmt -w $(MODULES)

bench: build
	bin/devenv test -- go test $(BENCH_FLAGS) $(PKGS)

tidy:
	for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

clean:
	rm -rf bin

FORCE:
