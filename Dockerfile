# kvgate image: a static binary on a distroless, non-root base.
#
#   docker build -t kvgate .                                  # or: podman build / buildah bud
#   docker buildx build --platform linux/amd64,linux/arm64 -t kvgate .
#
# Without a Docker engine and without pulling a base image, use
# deploy/image/build.sh (buildah, from scratch) instead.
#
# Base images are fully qualified so podman and buildah, which have no
# default registry, resolve them the same way Docker does.
# The build stage runs on the build machine's platform and cross-compiles
# for the target's (TARGETOS/TARGETARCH, set by buildx and podman --platform).
FROM --platform=$BUILDPLATFORM docker.io/library/golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X github.com/kvgate/kvgate/internal/buildinfo.version=${VERSION}" -o /out/kvgate ./cmd/kvgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kvgate /usr/local/bin/kvgate
# 65532 is distroless's nonroot user; numeric, so Kubernetes can check runAsNonRoot.
USER 65532:65532
# 8080 plaintext, 8443 TLS (TCP) and HTTP/3 (UDP, same port), 9901 admin.
EXPOSE 8080/tcp 8443/tcp 8443/udp 9901/tcp
ENTRYPOINT ["/usr/local/bin/kvgate"]
CMD ["run", "--config", "/etc/kvgate/kvgate.yaml"]
