# Driftline: one image, one binary; the compose file runs it as the pipeline worker and as
# the serving worker.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -ldflags "-X github.com/driftline/driftline/internal/buildinfo.revision=${REVISION}" \
    -o /out/driftline ./cmd/driftline

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/driftline /usr/local/bin/driftline
COPY examples /examples
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/driftline"]
