# shopstack — `make help` lists every target.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= 0.1.0
IMG ?= ghcr.io/shopstack/shopstack-operator:$(VERSION)
GOBIN := $(CURDIR)/bin
CONTROLLER_GEN_VERSION := v0.23.0
KUSTOMIZE_VERSION := v5.8.2
CONTROLLER_GEN := $(GOBIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
KUSTOMIZE := $(GOBIN)/kustomize-$(KUSTOMIZE_VERSION)
KUBECTL ?= kubectl
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests from the Go markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the deepcopy functions.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files are not committed up to date.
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "generated files are out of date; run 'make manifests generate' and commit:"; \
		git status --porcelain -- api config; git --no-pager diff --stat -- api config; exit 1; fi

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w .

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: control-plane
control-plane: ## Build kube-apiserver, etcd and kubectl once (cached outside the clone).
	hack/control-plane.sh >/dev/null

.PHONY: test
test: control-plane ## Run every test: the operator's (real kube-apiserver and etcd) and the services' (real Postgres and Redis).
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	go vet ./...
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test ./... -count=1 -timeout 20m
	$(MAKE) test-apps

.PHONY: test-apps
test-apps: ## Run the services' tests (apps/ module) against real Postgres and Redis processes.
	cd apps && go vet ./... && go test ./... -count=1 -timeout 20m

.PHONY: run-apps
run-apps: ## Run PostgreSQL, Redis and the four services locally with mTLS; prints curl commands; Ctrl-C stops all.
	cd apps && go build -o ../bin/run-apps ./cmd/run-apps
	bin/run-apps

.PHONY: bench-apps
bench-apps: ## Orders per second through the saga vs the same transactions issued directly, then p50/p99 at half load.
	cd apps && go build -o ../bin/bench-apps ./cmd/bench-apps
	bin/bench-apps

.PHONY: bench
bench: control-plane ## Convergence benchmark: operator vs a bare server-side-apply client, 1 and 50 Shops.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go run ./hack/bench

##@ End to end

E2E_NEXT_VERSION ?= 0.1.1

.PHONY: cluster-up
cluster-up: ## Start the local single-node cluster (real kubelet, containerd, CNI; built from source, cached).
	hack/local-cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and clean up its processes, mounts and network state.
	hack/local-cluster/down.sh

.PHONY: images
images: ## Build every image (operator, services, probe, pause, CoreDNS, Postgres, Redis) without Docker; import them into the local cluster.
	go run ./hack/images -version $(VERSION) -also-tag $(E2E_NEXT_VERSION) -import \
		-containerd-address "$${SHOPSTACK_CLUSTER_STATE:-/var/lib/shopstack-cluster}/containerd/containerd.sock"

.PHONY: e2e-local
e2e-local: ## cluster-up, images, the e2e suite, cluster-down; prints each stage's time.
	VERSION=$(VERSION) E2E_NEXT_VERSION=$(E2E_NEXT_VERSION) hack/e2e/local.sh

.PHONY: test-e2e
test-e2e: ## The same e2e suite on a new kind cluster (needs a Docker engine).
	VERSION=$(VERSION) E2E_NEXT_VERSION=$(E2E_NEXT_VERSION) hack/e2e/kind.sh

##@ Build

.PHONY: build
build: ## Build the manager binary.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/manager ./cmd

.PHONY: run
run: ## Run the manager against the current kubeconfig.
	go run -ldflags "$(LDFLAGS)" ./cmd --metrics-bind-address=0 --health-probe-bind-address=:8081

.PHONY: render
render: ## Print every child of the sample Shop as YAML, without a cluster.
	@go run -ldflags "$(LDFLAGS)" ./cmd render -f config/samples/shopstack_v1alpha1_shop.yaml

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: docker-build-apps
docker-build-apps: ## Build the four service images (needs a Docker engine).
	for svc in user order payment inventory; do \
		docker build --build-arg SERVICE=$$svc --build-arg VERSION=$(VERSION) -t ghcr.io/shopstack/shopstack-$$svc:$(VERSION) apps; done

.PHONY: demo
demo: control-plane ## Local control plane + operator + sample Shop; prints its tree and conditions.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go run ./hack/demo $(DEMO_ARGS)

##@ Deployment

.PHONY: install
install: $(KUSTOMIZE) ## Install the CRDs into the current cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: $(KUSTOMIZE) ## Remove the CRDs (and every Shop) from the current cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: $(KUSTOMIZE) ## Deploy the operator to the current cluster.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the operator from the current cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: build-installer
build-installer: manifests $(KUSTOMIZE) ## Write dist/install.yaml, the one-file install.
	mkdir -p dist
	$(KUSTOMIZE) build config/default > dist/install.yaml

.PHONY: vendor-crds
vendor-crds: ## Refresh config/thirdparty from the cert-manager, Gateway API and Istio modules.
	hack/vendor-crds.sh

##@ Tools

$(CONTROLLER_GEN):
	GOBIN=$(GOBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(GOBIN)/controller-gen $@

$(KUSTOMIZE):
	GOBIN=$(GOBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(GOBIN)/kustomize $@
