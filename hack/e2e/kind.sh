#!/usr/bin/env bash
# `make test-e2e`: the end-to-end suite on a kind cluster (needs a Docker
# engine). Creates the cluster (kind v0.24+ enforces NetworkPolicies), installs
# cert-manager and metrics-server from their release manifests, builds the
# images without Docker (hack/images) and loads them into the kind node, runs
# test/e2e, and deletes the cluster (E2E_KEEP_CLUSTER=1 keeps it).
# On a machine without Docker, `make e2e-local` runs the same suite on a local
# single-node cluster instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VERSION="${VERSION:-0.1.0}"
E2E_NEXT_VERSION="${E2E_NEXT_VERSION:-0.1.1}"
KIND_VERSION="${KIND_VERSION:-v0.33.0}"
CLUSTER="${KIND_CLUSTER:-shopstack-e2e}"
CERT_MANAGER_VERSION="v1.21.2"
METRICS_SERVER_VERSION="v0.9.0"
# shellcheck source=hack/e2e/common.sh
source "$ROOT/hack/e2e/common.sh"
check_operator_tag "$VERSION"

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "test-e2e: kind needs a running Docker engine, and none answers here." >&2
  echo "test-e2e: run the same suite on the local single-node cluster with: make e2e-local" >&2
  exit 2
fi

KIND="$ROOT/bin/kind-$KIND_VERSION"
if [[ ! -x "$KIND" ]]; then
  GOBIN="$ROOT/bin" go install "sigs.k8s.io/kind@$KIND_VERSION"
  mv "$ROOT/bin/kind" "$KIND"
fi
# kubectl from PATH, else the one hack/control-plane.sh builds.
KUBECTL="${KUBECTL:-$(command -v kubectl || echo "$(hack/control-plane.sh)/kubectl")}"
KUBECONFIG="$(mktemp -d)/kubeconfig"
export KUBECONFIG

stage_start=$SECONDS
stage() { echo "=== test-e2e: $1 (previous stage took $((SECONDS - stage_start))s)"; stage_start=$SECONDS; }

finish() {
  local rc=$?
  if [[ "${E2E_KEEP_CLUSTER:-}" == 1 ]]; then
    echo "=== test-e2e: leaving kind cluster $CLUSTER up; KUBECONFIG=$KUBECONFIG"
  else
    "$KIND" delete cluster --name "$CLUSTER" || true
  fi
  exit "$rc"
}

stage "kind cluster"
# The suite's own cluster: one that exists already is somebody else's.
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "test-e2e: a kind cluster named $CLUSTER exists already; delete it (kind delete cluster --name $CLUSTER)" \
    "or set KIND_CLUSTER to another name" >&2
  exit 2
fi
trap finish EXIT
"$KIND" create cluster --name "$CLUSTER" --wait 120s
"$KIND" get kubeconfig --name "$CLUSTER" >"$KUBECONFIG"

stage "cert-manager and metrics-server"
"$KUBECTL" apply --server-side -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
"$KUBECTL" apply --server-side -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/$METRICS_SERVER_VERSION/components.yaml"
# kind's kubelets serve self-signed certificates.
"$KUBECTL" -n kube-system patch deployment metrics-server --type=json \
  -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
"$KUBECTL" -n cert-manager rollout status deployment --timeout=180s
"$KUBECTL" -n kube-system rollout status deployment/metrics-server --timeout=180s

stage "images (build without Docker, load into kind)"
images="$(mktemp -d)"
go run ./hack/images -out "$images" -version "$VERSION" -also-tag "$E2E_NEXT_VERSION" operator services probe
# The data tier: the images made from Debian's packages where they can be
# built (root and debootstrap), else the official images the operator
# defaults to, which kind's node pulls itself (IfNotPresent; the images
# loaded below are present already); the same pod spec runs either.
if [[ "$(id -u)" == 0 ]] && command -v debootstrap >/dev/null; then
  go run ./hack/images -out "$images" postgres redis
else
  export E2E_POSTGRES_IMAGE="${E2E_POSTGRES_IMAGE:-docker.io/library/postgres:17}"
  export E2E_REDIS_IMAGE="${E2E_REDIS_IMAGE:-docker.io/library/redis:7.4}"
  export E2E_PULL_POLICY="${E2E_PULL_POLICY:-IfNotPresent}"
fi
for tarball in "$images"/*.tar; do
  "$KIND" load image-archive "$tarball" --name "$CLUSTER"
done

stage "suite"
# kind's node has a default route to the outside: the containment check is
# for the local cluster only.
E2E_KUBECTL="$KUBECTL" E2E_VERSION="$VERSION" E2E_NEXT_VERSION="$E2E_NEXT_VERSION" \
  E2E_SKIP_CONTAINMENT=1 \
  go test -tags e2e ./test/e2e -count=1 -timeout 45m -v
stage "done"
