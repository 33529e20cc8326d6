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

GO_TEST_FLAGS ?= -race -count=1 -timeout 25m
BENCH_FLAGS   ?= -run '^$$' -bench . -benchmem -count 6

.PHONY: all help build run run-nextjs test lint fmt bench bench-go soak fuzz clean tidy FORCE
all: build

help: ## this list
	@awk -F':.*## ' '/^[a-z][a-z0-9-]*:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: $(BINARIES) bin/devenv ## build every service into bin/

# Static, reproducible binaries; go decides what is stale.
bin/%: FORCE
	@mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -o $@ ./$*

bin/devenv: FORCE
	@mkdir -p bin
	go build -o $@ ./kit/cmd/devenv

run: build ## the whole stack on http://localhost:8080 (state kept in .run/)
	bin/devenv run -state .run -bin bin

# `make run` with examples/nextjs (next start) as the web upstream instead of
# the demo; BACKEND=fastapi also puts examples/fastapi in the Go backend's
# place (docs/migrating.md). npm ci and next build run only when stale.
NEXTJS  := examples/nextjs
BACKEND ?= go
run-nextjs: build $(NEXTJS)/.next/BUILD_ID ## make run with examples/nextjs as the web (BACKEND=fastapi: examples/fastapi too)
	@rm -rf .run/nextjs-bin && mkdir -p .run/nextjs-bin
	ln -s $(CURDIR)/bin/authsvc $(CURDIR)/bin/proxy .run/nextjs-bin/
	printf '#!/bin/sh\ncd %s && NEXT_TELEMETRY_DISABLED=1 exec node node_modules/next/dist/bin/next start -H 127.0.0.1 -p 8083\n' \
	  '$(CURDIR)/$(NEXTJS)' > .run/nextjs-bin/web && chmod +x .run/nextjs-bin/web
	@if [ "$(BACKEND)" = fastapi ]; then \
	  bin/devenv install fastapi && ln -s $(CURDIR)/examples/fastapi/serve.py .run/nextjs-bin/backend; \
	else ln -s $(CURDIR)/bin/backend .run/nextjs-bin/; fi
	bin/devenv run -state .run -bin .run/nextjs-bin

$(NEXTJS)/node_modules/.package-lock.json: $(NEXTJS)/package-lock.json
	cd $(NEXTJS) && npm ci --no-audit --no-fund --loglevel=error

$(NEXTJS)/.next/BUILD_ID: $(NEXTJS)/node_modules/.package-lock.json $(NEXTJS)/next.config.mjs \
		$(shell find $(NEXTJS)/app $(NEXTJS)/lib -type f 2>/dev/null)
	cd $(NEXTJS) && NEXT_TELEMETRY_DISABLED=1 node node_modules/next/dist/bin/next build

# Every test, with the race detector, against one private Postgres and Redis
# (started and removed by devenv, on free loopback ports). `devenv install`
# first installs every Debian package the tests need, in one apt-get run.
test: lint build ## every test (gofmt, vet, race detector) against private Postgres and Redis
	bin/devenv install
	bin/devenv test -- go test $(GO_TEST_FLAGS) $(PKGS)

lint: lint-tracked ## gofmt, go vet, and no tracked binaries or files over 1 MiB
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

# No build output is ever committed: a tracked executable binary (ELF,
# Mach-O, PE) or a tracked file over 1 MiB fails, except the data the
# product needs (issue 12: two service binaries, 45 MB, were tracked).
LINT_BIG_OK := authsvc/internal/password/common-passwords.txt
.PHONY: lint-tracked
lint-tracked:
	@bad=$$(git ls-files -z | xargs -0 -r sh -c 'for f; do \
	    [ -f "$$f" ] || continue; \
	    case " $(LINT_BIG_OK) " in *" $$f "*) continue;; esac; \
	    if [ $$(stat -c %s "$$f") -gt 1048576 ]; then echo "$$f: over 1 MiB"; fi; \
	    case "$$(head -c 4 "$$f" | od -An -tx1 | tr -d " \n")" in \
	      7f454c46) echo "$$f: ELF executable";; \
	      cafebabe|cefaedfe|cffaedfe|4d5a*) echo "$$f: executable binary";; \
	    esac; done' sh); \
	if [ -n "$$bad" ]; then echo "tracked build outputs or oversized files:"; echo "$$bad"; exit 1; fi

fmt: ## gofmt -w every module
	gofmt -w $(MODULES)

# One side-by-side table from one run (bench/README.md): the fixed upstream
# direct, a bare httputil proxy, nginx, our proxy per token kind, both at
# 2,000 connections and holding 10,000 idle ones, and the full stack, also
# on the services of BENCH_BEFORE_REV (the commit issue 18 was filed
# against, built once into a cache outside the repo). ~8 min; writes
# bench/results/latest.{md,json}. BENCH_ARGS=-quick for a short smoke run
# that writes nothing.
BENCH_ARGS ?=
BENCH_BEFORE_REV ?= b1d2d63
BENCH_BEFORE_DIR ?= $${XDG_CACHE_HOME:-$$HOME/.cache}/gatehouse/bench-before-$$(git rev-parse --short=12 '$(BENCH_BEFORE_REV)^{commit}' 2>/dev/null || echo '$(BENCH_BEFORE_REV)')-$$(go env GOVERSION)
bench: build ## side-by-side load benchmark table (about 8 min; BENCH_ARGS=-quick)
	d="$(BENCH_BEFORE_DIR)"; case "$$d" in /*) ;; *) d="$$PWD/$$d";; esac; \
	bench/build-before.sh $(BENCH_BEFORE_REV) "$$d" && \
	cd bench && go run ./cmd/gatebench -bin ../bin -before-bin "$$d" $(BENCH_ARGS)

# The Go micro-benchmarks (benchstat-friendly: -count 6).
bench-go: build ## the Go micro-benchmarks, -count 6 for benchstat
	bin/devenv test -- go test $(BENCH_FLAGS) $(PKGS)

# Load soak through the whole stack (default 10m): mixed traffic, zero 5xx,
# no lost writes, flat memory and goroutines; GATEHOUSE_SOAK=30m for longer.
soak: build ## load soak through the whole stack (GATEHOUSE_SOAK=10m)
	GATEHOUSE_SOAK=$${GATEHOUSE_SOAK:-10m} bin/devenv test -- go test -count=1 -timeout 60m -run '^TestSoak$$' -v ./e2e/

# Every fuzz target in the workspace, one after another, FUZZTIME each
# (go test runs one -fuzz target per package at a time). Their seed corpora
# also run as plain tests in `make test`.
FUZZTIME ?= 30s
fuzz: ## every fuzz target for FUZZTIME each
	@grep -rl --include='*_test.go' '^func Fuzz' $(MODULES) | sort | while read -r f; do \
	  for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
	    echo "== $$fn ($$(dirname $$f), $(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f) || exit 1; \
	  done; \
	done

tidy: ## go mod tidy in every module
	for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

clean: ## remove bin/
	rm -rf bin

FORCE:

# ---- Containers and Kubernetes -------------------------------------------
# podman if present (this machine's docker is a client without a daemon).
CONTAINER    ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE_PREFIX ?= localhost/gatehouse
IMAGE_TAG    ?= dev
# Extra build flags; on hosts like the development machines here:
# CONTAINER="podman --runtime runc" IMAGE_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
IMAGE_FLAGS  ?=
KIND         ?= kind
KIND_CLUSTER ?= gatehouse
KUBECTL      ?= kubectl --context kind-$(KIND_CLUSTER)
ENTRY        ?= gateway
ENVOY_GATEWAY_VERSION ?= v1.5.0
INGRESS_NGINX_VERSION ?= controller-v1.13.0

.PHONY: images kind-up kind-load kind-secrets deploy kind-down k8s-verify

images: ## build the four container images with podman or docker
	@test -n "$(CONTAINER)" || { echo "images: need podman or docker"; exit 1; }
	for s in proxy backend authsvc web; do \
	  $(CONTAINER) build $(IMAGE_FLAGS) --target $$s -t $(IMAGE_PREFIX)/$$s:$(IMAGE_TAG) . ; \
	done

kind-up: ## create the kind cluster with Envoy Gateway (ENTRY=ingress: ingress-nginx too)
	$(KIND) get clusters 2>/dev/null | grep -qx $(KIND_CLUSTER) || \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config k8s/kind/cluster.yaml --wait 120s
	$(KUBECTL) apply --server-side -f https://github.com/envoyproxy/gateway/releases/download/$(ENVOY_GATEWAY_VERSION)/install.yaml
	$(KUBECTL) -n envoy-gateway-system wait --for=condition=Available deployment/envoy-gateway --timeout=180s
	$(KUBECTL) apply -f k8s/kind/gatewayclass.yaml
	@if [ "$(ENTRY)" = ingress ]; then \
	  $(KUBECTL) apply -f https://raw.githubusercontent.com/kubernetes/ingress-nginx/$(INGRESS_NGINX_VERSION)/deploy/static/provider/kind/deploy.yaml; \
	  $(KUBECTL) -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout=180s; \
	fi

# Images into the cluster's containerd, by archive so podman works too.
kind-load: ## load the images into the kind cluster
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for s in proxy backend authsvc web; do \
	  $(CONTAINER) save -o $$tmp/$$s.tar $(IMAGE_PREFIX)/$$s:$(IMAGE_TAG); \
	  $(KIND) load image-archive --name $(KIND_CLUSTER) $$tmp/$$s.tar; \
	done

# Random development secrets for the kind overlay: written to git-ignored
# files (kept, so a redeploy reuses them) and created in the cluster; they are
# never part of the kustomize render.
KIND_SECRETS := auth postgres backend-db authsvc-db redis
kind-secrets: ## random development Secrets for the kind overlay
	go run ./k8s/cmd/kindsecrets k8s/overlays/kind/secrets
	$(KUBECTL) create namespace gatehouse --dry-run=client -o yaml | $(KUBECTL) apply -f -
	for s in $(KIND_SECRETS); do \
	  $(KUBECTL) -n gatehouse create secret generic $$s --from-env-file=k8s/overlays/kind/secrets/$$s.env \
	    --dry-run=client -o yaml | $(KUBECTL) apply -f - ; \
	done

deploy: kind-secrets ## kubectl apply -k the kind overlay and wait for the rollout
	$(KUBECTL) apply -k k8s/overlays/kind
	$(KUBECTL) -n gatehouse rollout status statefulset/postgres --timeout=180s
	$(KUBECTL) -n gatehouse rollout status deployment/authsvc --timeout=180s
	$(KUBECTL) -n gatehouse rollout status deployment/todo --timeout=180s
	$(KUBECTL) -n gatehouse rollout status deployment/web --timeout=180s
	@# The chosen entry owns NodePort 30080, which kind maps to http://localhost.
	@if [ "$(ENTRY)" = ingress ]; then \
	  $(KUBECTL) -n ingress-nginx patch svc ingress-nginx-controller --type=json \
	    -p '[{"op":"replace","path":"/spec/ports/0/nodePort","value":30080}]'; \
	else \
	  for i in $$(seq 30); do \
	    svc=$$($(KUBECTL) -n envoy-gateway-system get svc -l gateway.envoyproxy.io/owning-gateway-name=gatehouse,gateway.envoyproxy.io/owning-gateway-namespace=gatehouse -o name); \
	    [ -n "$$svc" ] && break; sleep 2; done; \
	  $(KUBECTL) -n envoy-gateway-system patch $$svc --type=json \
	    -p '[{"op":"replace","path":"/spec/ports/0/nodePort","value":30080}]'; \
	fi
	@echo "Gatehouse is on http://localhost/"

kind-down: ## delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# A real control plane on loopback (etcd, kube-apiserver with RBAC and Pod
# Security admission, controller-manager, scheduler, kwok's simulated nodes):
# Gateway API CRDs, `make kind-secrets`, `kubectl apply -k` of the kind and
# production overlays, rollouts, EndpointSlices, PDBs, HPAs, a rolling update;
# then the mutation test: mutated manifests on one cluster must each fail
# (docs/kubernetes.md). The binaries are built once into ~/.cache/gatehouse
# (cold: ~35 CPU-minutes of go build, 39 min wall on a loaded 2-core machine;
# cached: the whole target takes ~3 minutes, the control plane is up in
# ~10s). .ci/run calls it after make test.
K8S_VERIFY_FLAGS ?=
k8s-verify: ## the manifests on a real control plane on loopback (docs/kubernetes.md)
	cd k8s && go run ./cmd/k8sverify -root .. $(K8S_VERIFY_FLAGS)
	cd k8s && go test -tags k8sverify -count=1 -parallel 8 -timeout 30m -run '^TestMutants$$' -v ./internal/verify/
