#!/usr/bin/env bash
# `make e2e-local`: the end-to-end suite on the local single-node cluster.
# Brings the cluster up (building what is missing), builds the images without
# Docker and imports them into the cluster's containerd, runs test/e2e, and
# takes the cluster down again (E2E_KEEP_CLUSTER=1 leaves it running; a
# cluster that was already up before is left up too). Prints how long each
# stage took.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VERSION="${VERSION:-0.1.0}"
E2E_NEXT_VERSION="${E2E_NEXT_VERSION:-0.1.1}"
STATE="${SHOPSTACK_CLUSTER_STATE:-/var/lib/shopstack-cluster}"
export SHOPSTACK_CLUSTER_STATE="$STATE"

# shellcheck source=hack/e2e/common.sh
source "$ROOT/hack/e2e/common.sh"
check_operator_tag "$VERSION"

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
was_up=false
host_before=""
finish() {
  local rc=$?
  set +e
  if [[ "${E2E_KEEP_CLUSTER:-}" == 1 ]]; then
    echo "=== e2e-local: leaving the cluster up (E2E_KEEP_CLUSTER=1); stop it with make cluster-down"
  elif [[ "$was_up" == true ]]; then
    echo "=== e2e-local: leaving the cluster up: it was up before this run; stop it with make cluster-down"
  else
    stage "cluster down"
    hack/local-cluster/down.sh || { echo "=== e2e-local: cluster-down failed" >&2; ((rc == 0)) && rc=1; }
    # The machine as it was before the cluster: every sysctl, iptables rule,
    # route, interface and host folder.
    if [[ -n "$host_before" ]]; then
      if changes="$(hack/local-cluster/host-state.sh --diff "$host_before")"; then
        echo "=== e2e-local: the machine is as before the cluster (sysctls, iptables, ipsets, routes, interfaces, folders)"
      else
        echo "=== e2e-local: FAIL: cluster-down left the machine changed (< before, > after):" >&2
        printf '%s\n' "$changes" >&2
        ((rc == 0)) && rc=1
      fi
      rm -f "$host_before"
    fi
  fi
  stage ""
  echo "=== e2e-local: stage timings"
  printf '  %s\n' "${timings[@]}"
  ((rc == 0)) && echo "=== e2e-local: PASS" || echo "=== e2e-local: FAIL (exit $rc)"
  exit "$rc"
}
trap finish EXIT

stage "cluster up"
status=0
hack/local-cluster/up.sh --status || status=$?
case "$status" in
  0) was_up=true
     echo "=== e2e-local: the cluster is already up; it is used as it is and left up afterwards" ;;
  1) ;;
  3) echo "=== e2e-local: leftovers of an earlier run; taking them down first"
     hack/local-cluster/down.sh ;;
  *) was_up=true # not this run's to take down
     echo "e2e-local: the local cluster is partly up or does not answer; see $STATE/logs/, then make cluster-down" >&2
     exit 1 ;;
esac
if [[ "$was_up" == false ]]; then
  host_before="$(mktemp)"
  hack/local-cluster/host-state.sh >"$host_before"
  hack/local-cluster/up.sh
fi

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
KUBECONFIG="$STATE/kubeconfig" E2E_KUBECTL="$KUBECTL" E2E_ON_NODE=1 \
  E2E_VERSION="$VERSION" E2E_NEXT_VERSION="$E2E_NEXT_VERSION" \
  go test -tags e2e ./test/e2e -count=1 -timeout 45m -v
