# One image for both parts of dunning; the command picks the part:
#
#   docker run dunning webhook   # POST /webhooks/stripe on HTTP_ADDR (:8080)
#   docker run dunning worker    # the Temporal worker; /metrics on WORKER_METRICS_ADDR
#
# A static binary (no cgo) on distroless/static: no shell, no package
# manager, CA certificates and tzdata included, run as the unprivileged
# user nonroot (65532).

# ---- build
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/dunning ./cmd/dunning

# ---- run
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dunning /usr/local/bin/dunning
USER nonroot:nonroot
ENV HTTP_ADDR=:8080 \
    LOG_FORMAT=json
EXPOSE 8080
# The webhook's liveness: GET /healthz on HTTP_ADDR. A worker container
# overrides it to probe its metrics endpoint instead (docker-compose.yml):
#   dunning healthcheck --url http://127.0.0.1:9464/metrics
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/dunning", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dunning"]
CMD ["webhook"]
