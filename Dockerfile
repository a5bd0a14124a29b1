# syntax=docker/dockerfile:1
# Build: docker build -t approvals .
# Run:   docker run -p 8080:8080 -v approvals-data:/data --env-file approvals.env approvals
#        (approvals.env: start from deploy/approvals.env.example; secrets as files, e.g.
#        -v /etc/approvals/secrets:/run/secrets:ro with APPROVALS_API_KEYS_FILE=/run/secrets/api-keys)
# The build context leaves out data files, secrets and .git (.dockerignore).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The Graph SDK needs ~4 GB to compile: keep parallelism moderate.
RUN CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/approvals ./cmd/approvals \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/approvals /usr/local/bin/approvals
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV APPROVALS_DB=/data/approvals.db APPROVALS_LISTEN=:8080
EXPOSE 8080
VOLUME ["/data"]
# The image has no shell or curl: the binary probes its own /readyz (port from APPROVALS_LISTEN).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["/usr/local/bin/approvals", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/approvals"]
CMD ["serve"]
