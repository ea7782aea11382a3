#!/usr/bin/env bash
# Builds the binaries of the local single-node cluster from their Go modules
# (pinned in hack/tools/*) once, and caches them outside the clone so every
# clone on this machine reuses them. Prints the folder.
#
#   hack/local-cluster/build.sh          build what is missing, print the folder
#   hack/local-cluster/build.sh --check  exit 1 when something is missing
#
# Node components: kubelet, kube-controller-manager, kube-scheduler,
# kube-proxy (Kubernetes v1.37.2); CNI bridge, host-local, loopback, portmap;
# kube-router (NetworkPolicy enforcement only); metrics-server (HPA);
# the cert-manager v1.21.2 controllers (hack/tools/cert-manager/controller).
# The API server, etcd and kubectl come from hack/control-plane.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
K8S_VERSION="v1.37.2"
CACHE="${SHOPSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopstack}"
DEST="$CACHE/local-cluster-k8s-$K8S_VERSION"

# binary  module-dir  package
TARGETS=(
  "kubelet kube k8s.io/kubernetes/cmd/kubelet"
  "kube-controller-manager kube k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler kube k8s.io/kubernetes/cmd/kube-scheduler"
  "kube-proxy kube k8s.io/kubernetes/cmd/kube-proxy"
  "cni/bridge cni github.com/containernetworking/plugins/plugins/main/bridge"
  "cni/host-local cni github.com/containernetworking/plugins/plugins/ipam/host-local"
  "cni/loopback cni github.com/containernetworking/plugins/plugins/main/loopback"
  "cni/portmap cni github.com/containernetworking/plugins/plugins/meta/portmap"
  "kube-router kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
  "metrics-server metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server"
  "cert-manager-controller cert-manager github.com/shopstack/shopstack/hack/tools/cert-manager/controller"
)

missing() {
  local t bin
  for t in "${TARGETS[@]}"; do
    read -r bin _ _ <<<"$t"
    [[ -x "$DEST/$bin" ]] || return 0
  done
  return 1
}

if [[ "${1:-}" == "--check" ]]; then
  if missing; then exit 1; fi
  echo "$DEST"
  exit 0
fi

command -v go >/dev/null || { echo "local-cluster: the go command is missing; install Go 1.26 first" >&2; exit 1; }
mkdir -p "$DEST/cni"
export CGO_ENABLED=0
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"

for t in "${TARGETS[@]}"; do
  read -r bin dir pkg <<<"$t"
  [[ -x "$DEST/$bin" ]] && continue
  ldflags="-s -w"
  [[ "$dir" == kube ]] && ldflags="$kube_ldflags"
  echo "local-cluster: building $bin ($pkg)" >&2
  start=$SECONDS
  (cd "$ROOT/hack/tools/$dir" && go build -trimpath -ldflags "$ldflags" -o "$DEST/$bin.tmp" "$pkg")
  mv "$DEST/$bin.tmp" "$DEST/$bin"
  echo "local-cluster: built $bin in $((SECONDS - start))s" >&2
done
echo "$DEST"
