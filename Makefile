# kvgate: run `make help` for the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION) -X github.com/kvgate/kvgate/internal/buildinfo.version=$(VERSION)
OUT     ?= bin/kvgate
TAGS    ?=

.PHONY: help build test testbin bench fuzz lint clean manifests deploycheck image screenshot

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/kvgate (static, trimmed; OUT=path, GOARCH=arm64 cross-builds, TAGS=nokube leaves Kubernetes out)
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(OUT) ./cmd/kvgate

test: ## vet, then every test with the race detector (the README's test command)
	$(GO) vet ./...
	$(GO) vet -tags nokube ./cmd/kvgate
	$(GO) test -tags nokube -run NoKube ./cmd/kvgate
	KVGATE_TESTBIN=$${KVGATE_TESTBIN:-$$(hack/testbin/build.sh)} $(GO) test -race -timeout 20m ./...

testbin: ## build (once, then cached) the real kube-apiserver and etcd the kube/ tests run
	@hack/testbin/build.sh

bench: ## Go microbenchmarks (compare runs with benchstat)
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; done

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

manifests: ## render deploy/manifests/kvgate.yaml (chart defaults) and kvgate-kubernetes.yaml (kubernetes.enabled) (needs helm)
	deploy/manifests/generate.sh

deploycheck: ## Helm chart tests, manifests up to date, systemd unit verify (needs helm, systemd-analyze)
	deploy/helm/test.sh
	deploy/manifests/generate.sh --check
	deploy/systemd/verify.sh

image: ## OCI image from scratch with buildah, then its podman smoke test (deploy/image/)
	deploy/image/build.sh
	deploy/image/smoke.sh

screenshot: ## regenerate docs/status-page.png, the README's status page picture (needs chromium)
	$(GO) run ./hack/statuspage -o docs/status-page.png

clean: ## remove build outputs
	rm -rf bin
