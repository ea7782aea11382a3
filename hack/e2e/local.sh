#!/usr/bin/env bash
# `make e2e-local`: the end-to-end suite on the local single-node cluster.
# Brings the cluster up (building what is missing), builds the images without
# Docker and imports them into the cluster's containerd, runs test/e2e, and
# takes the cluster down again (E2E_KEEP_CLUSTER=1 leaves it running).
# Prints how long each stage took.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VERSION="${VERSION:-0.1.0}"
E2E_NEXT_VERSION="${E2E_NEXT_VERSION:-0.1.1}"
STATE="${SHOPSTACK_CLUSTER_STATE:-/var/lib/shopstack-cluster}"
export SHOPSTACK_CLUSTER_STATE="$STATE"

timings=()
stage_name=""
stage_start=$SECONDS
stage() {
  if [[ -n "$stage_name" ]]; then
    timings+=("$(printf '%-52s %5ds' "$stage_name" $((SECONDS - stage_start)))")
  fi
  stage_name="$1"
  stage_start=$SECONDS
  [[ -n "$1" ]] && echo "=== e2e-local: $1"
}
finish() {
  local rc=$?
  set +e
  if [[ "${E2E_KEEP_CLUSTER:-}" == 1 ]]; then
    echo "=== e2e-local: leaving the cluster up (E2E_KEEP_CLUSTER=1); stop it with make cluster-down"
  else
    stage "cluster down"
    hack/local-cluster/down.sh || { echo "=== e2e-local: cluster-down failed" >&2; ((rc == 0)) && rc=1; }
  fi
  stage ""
  echo "=== e2e-local: stage timings"
  printf '  %s\n' "${timings[@]}"
  ((rc == 0)) && echo "=== e2e-local: PASS" || echo "=== e2e-local: FAIL (exit $rc)"
  exit "$rc"
}
trap finish EXIT

stage "cluster up"
hack/local-cluster/up.sh

IMAGES="${XDG_CACHE_HOME:-$HOME/.cache}/shopstack/images"
stage "images (build and import)"
go run ./hack/images -out "$IMAGES" -version "$VERSION" -also-tag "$E2E_NEXT_VERSION" \
  -containerd-address "$STATE/containerd/containerd.sock" -import

stage "Postgres and Redis images run the operator's commands"
data_test_log="$(mktemp)"
SHOPSTACK_IMAGES="$IMAGES" go test ./hack/images -run Data -count=1 -v 2>&1 | tee "$data_test_log"
if grep -q -- '--- SKIP' "$data_test_log"; then
  echo "e2e-local: the data image tests were skipped; they must run here" >&2
  exit 1
fi
rm -f "$data_test_log"

stage "suite"
KUBECTL="$(hack/control-plane.sh)/kubectl"
KUBECONFIG="$STATE/kubeconfig" E2E_KUBECTL="$KUBECTL" \
  E2E_VERSION="$VERSION" E2E_NEXT_VERSION="$E2E_NEXT_VERSION" \
  go test -tags e2e ./test/e2e -count=1 -timeout 45m -v
