# syntax=docker/dockerfile:1
#
# One file, one final stage per service:
#
#   docker build --target backend -t gatehouse/backend:dev .   # or podman build
#
# targets: proxy, backend, authsvc, web. Each final image holds one static
# binary (CGO_ENABLED=0, -trimpath), runs as a non-root user and has no shell.
#
# Base images are build arguments so the same file builds anywhere: behind a
# registry mirror, or offline from a locally made Go image (k8s/container_test.go
# builds with GO_IMAGE=localhost/gatehouse-go RUNTIME_IMAGE=scratch and a
# file:// GOPROXY, because this development machine can pull no base image).
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# ---------------------------------------------------------------------------
# modfiles: only go.work, go.work.sum and every module's go.mod/go.sum, with
# their directory layout. Found, not listed, so a new module in go.work needs
# no edit here. COPY --from checksums content, so the download layer below is
# rebuilt only when a go.mod or go.sum changes, not on every source edit.
FROM ${GO_IMAGE} AS modfiles
WORKDIR /src
COPY . .
RUN find . -type f ! -name go.mod ! -name go.sum ! -name go.work ! -name go.work.sum -exec rm -f {} + \
 && find . -depth -type d -empty -exec rmdir {} \;

# ---------------------------------------------------------------------------
# deps: module downloads in their own layer.
FROM ${GO_IMAGE} AS deps
# Empty build arguments leave Go's defaults in force (an empty variable counts
# as unset); set them to build without the public proxy, e.g.
# --build-arg GOPROXY=file:///modcache --build-arg GOSUMDB=off.
ARG GOPROXY
ARG GOSUMDB
ARG GOFLAGS
# Explicit paths: the build must not depend on the base image's HOME or GOPATH.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOPATH=/go GOMODCACHE=/go/pkg/mod GOCACHE=/cache/go-build
WORKDIR /src
COPY --from=modfiles /src/ ./
# In workspace mode, as `make build` compiles: `go mod download` then fetches
# every module of the workspace build list. Downloading per member module
# (GOWORK=off) is not enough: the workspace selects, say, golang.org/x/crypto
# at the highest version any member requires, and that version's own go.mod
# can raise golang.org/x/text past every member's go.sum (seen here).
RUN go mod download

# ---------------------------------------------------------------------------
# build: the whole tree on top of the downloaded modules, every service
# compiled in one `go build`. The services share most of their dependencies
# (bun, pgx, zap, prometheus), so one compile is several times cheaper than
# four, and building any --target after the first reuses this cached layer.
FROM deps AS build
# Everything was downloaded above: compiling must not reach the network, so a
# missing module fails here, loudly, instead of being fetched uncached.
ENV GOPROXY=off GOFLAGS=-mod=readonly
COPY . .
RUN mkdir -p /out && go build -trimpath -ldflags='-s -w' -o /out/ ./proxy ./backend ./authsvc ./web

# ---------------------------------------------------------------------------
# Final images. Exec-form ENTRYPOINT: there is no shell to run a string form.
# USER is numeric (distroless "nonroot" is 65532) so it also holds on scratch,
# which has no /etc/passwd, and so Kubernetes' runAsNonRoot can verify it.

FROM ${RUNTIME_IMAGE} AS proxy
COPY --from=build /out/proxy /proxy
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/proxy"]

FROM ${RUNTIME_IMAGE} AS backend
COPY --from=build /out/backend /backend
USER 65532:65532
EXPOSE 8081 9091
ENTRYPOINT ["/backend"]

FROM ${RUNTIME_IMAGE} AS authsvc
COPY --from=build /out/authsvc /authsvc
USER 65532:65532
EXPOSE 8082 9092
ENTRYPOINT ["/authsvc"]

FROM ${RUNTIME_IMAGE} AS web
COPY --from=build /out/web /web
USER 65532:65532
EXPOSE 8083
ENTRYPOINT ["/web"]
