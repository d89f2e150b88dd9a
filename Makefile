# lpauth-operator. `make help` lists the targets.
# Tools are pinned and installed through the Go module proxy into a cache outside the repo, so a
# fresh clone needs only Go; nothing downloaded is ever committed.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

export GOTOOLCHAIN ?= local

CACHE ?= $(or $(LPAUTH_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lpauth)
export LPAUTH_CACHE := $(CACHE)
TOOLS := $(CACHE)/bin

CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ETCD_VERSION ?= 3.7.3
export ENVTEST_K8S_VERSION ENVTEST_ETCD_VERSION

CONTROLLER_GEN ?= $(TOOLS)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(TOOLS)/kustomize-$(KUSTOMIZE_VERSION)
# promtool unit-tests the alert rules (config/prometheus); Prometheus 3.16's Go module.
PROMTOOL_VERSION ?= v0.316.0
export PROMTOOL_VERSION
PROMTOOL ?= $(TOOLS)/promtool-$(PROMTOOL_VERSION)

IMG ?= ghcr.io/lpauth/lpauth-operator:dev

# Ginkgo specs within a package run in parallel processes where the suite allows it.
GO_TEST_FLAGS ?= -race -count=1



.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Write CRDs and RBAC from the API types and markers.
	$(CONTROLLER_GEN) crd rbac:roleName=manager-role paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Write deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) ## Fail when CRDs, RBAC or deepcopy code are stale.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/verify-generated.sh

.PHONY: fmt
fmt: ## gofmt the code.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet (both signer builds), and fail on unformatted files.
	go vet ./...
	@tags=$$(hack/openssl.sh); if [ -n "$$tags" ]; then go vet -tags "$$tags" ./tokenserver/signer/; fi
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: envtest
envtest: ## Build (once, cached) kube-apiserver and etcd for envtest; print their folder.
	@hack/envtest.sh

DEV_LISTEN ?= 127.0.0.1:8080

.PHONY: dev
dev: ## The whole system on an embedded control plane: operator, samples, token server on DEV_LISTEN.
	@hack/envtest.sh >/dev/null
	go build -tags "$$(hack/openssl.sh)" -o bin/lpauth-dev ./hack/dev
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" bin/lpauth-dev --listen $(DEV_LISTEN) $(DEV_FLAGS)

.PHONY: test
test: verify-generated vet ## Unit, envtest, browser and end-to-end tests; the signer both ways.
	hack/redis.sh >/dev/null
	hack/chromium.sh >/dev/null
	hack/helm.sh >/dev/null
	PROMTOOL="$$(hack/promtool.sh)" KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go test $(GO_TEST_FLAGS) ./...
	@# The libcrypto signer must pass what the pure-Go one passes (identical signatures included).
	@tags=$$(hack/openssl.sh); if [ -n "$$tags" ]; then \
	  echo "go test -tags $$tags ./tokenserver/signer/ ./tokenserver/server/"; \
	  go test $(GO_TEST_FLAGS) -tags "$$tags" ./tokenserver/signer/ ./tokenserver/server/; fi

.PHONY: prometheus-test
prometheus-test: $(PROMTOOL) ## promtool checks and unit-tests the shipped alert rules; the dashboard's queries are checked.
	PROMTOOL=$(PROMTOOL) go test -count=1 ./config/prometheus/

.PHONY: test-short
test-short: ## Unit and fake-client tests only (go test -short): seconds, no envtest, browser or Redis.
	go test -short ./...

.PHONY: bench
bench: build ## Benchmarks: raw RSA limits, HTTP load on a real token server, control plane at scale (bench/results-*.txt).
	@mkdir -p bench
	@hack/wrk.sh
	@hack/redis.sh >/dev/null
	go build -trimpath -tags "$$(hack/openssl.sh)" -o bin/lpauth-dev ./hack/dev
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go run -tags "$$(hack/openssl.sh)" ./hack/bench -bin bin/lpauth-operator -dev bin/lpauth-dev -out bench $(BENCH_FLAGS)

.PHONY: faults
faults: build ## Fault injection under load: operator kills, tampering, token server SIGTERMs, Redis/Sentinel/Cluster failures, API server and etcd outages, a soak (faults/results-<time>.txt).
	@hack/redis.sh >/dev/null
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go run ./hack/faults -bin bin/lpauth-operator -out faults $(FAULTS_FLAGS)

##@ Build

.PHONY: build
build: ## Build the one binary (manager | tokenserver | kubectl-lpauth) into bin/, with the libcrypto signer when possible.
	go build -trimpath -tags "$$(hack/openssl.sh)" -o bin/lpauth-operator .

.PHONY: plugin
plugin: ## Build the kubectl plugin, bin/kubectl-lpauth (the same program; put it on PATH for `kubectl lpauth`).
	@# Without cgo, as the krew archives are (config/krew): the plugin signs nothing.
	CGO_ENABLED=0 go build -trimpath -o bin/kubectl-lpauth .

DIST ?= dist
# The namespaced install watches these (comma-separated); the chart takes them as a value.
WATCH_NAMESPACES ?= brand-auth
CHART_VERSION ?= 0.1.0

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml (cluster-wide) and dist/install-namespaced.yaml (WATCH_NAMESPACES only), running IMG.
	@# After manifests, not beside it: under make -j a prerequisite would copy config/ mid-write.
	@$(MAKE) --no-print-directory installer-files

.PHONY: helm
helm: manifests ## Write the Helm chart dist/chart from the same source as dist/install.yaml, and lint it.
	@$(MAKE) --no-print-directory chart-files
	helm=$$(hack/helm.sh) && "$$helm" lint --strict $(DIST)/chart && \
	  echo "install (README \"Install on a cluster\"): $$helm install lpauth $(DIST)/chart -n lpauth-system"

# The two above without regenerating config/ first: the chart tests call these, so a test never
# rewrites the tree other tests read.
.PHONY: installer-files chart-files
installer-files: $(KUSTOMIZE)
	@mkdir -p $(DIST)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp -r config "$$tmp/"; \
	  (cd "$$tmp/config/manager" && $(KUSTOMIZE) edit set image lpauth-operator=$(IMG)); \
	  $(KUSTOMIZE) build "$$tmp/config/default" > $(DIST)/install.yaml
	@echo "wrote $(DIST)/install.yaml (image $(IMG))"
	@go run ./hack/installer/gen -in $(DIST)/install.yaml -namespaced $(DIST)/install-namespaced.yaml -watch-namespaces $(WATCH_NAMESPACES)

chart-files: installer-files
	@go run ./hack/installer/gen -in $(DIST)/install.yaml -chart $(DIST)/chart -chart-version $(CHART_VERSION)

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Tools

$(CONTROLLER_GEN):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(TOOLS)/controller-gen $@

$(KUSTOMIZE):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(TOOLS)/kustomize $@

$(PROMTOOL):
	@hack/promtool.sh >/dev/null
