# One image for `dunning worker` and `dunning webhook`: a static binary on a
# small base, run as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dunning ./cmd/dunning

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dunning /usr/local/bin/dunning
USER nonroot:nonroot
EXPOSE 8080
# The webhook answers /healthz; the worker has no port, so its service
# overrides this check in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/dunning", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dunning"]
CMD ["webhook"]
