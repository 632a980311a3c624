# Multi-stage build: a static binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kvgate ./cmd/kvgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kvgate /usr/local/bin/kvgate
USER nonroot:nonroot
EXPOSE 8080 8443 9901
ENTRYPOINT ["/usr/local/bin/kvgate"]
CMD ["run", "--config", "/etc/kvgate/kvgate.yaml"]
