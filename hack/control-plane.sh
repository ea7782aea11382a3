#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, etcd, kubectl) from their Go
# modules once and caches the binaries outside the clone, so every clone on this
# machine reuses them. Prints the folder to use as KUBEBUILDER_ASSETS.
#
#   hack/control-plane.sh          build what is missing, print the folder
#   hack/control-plane.sh --check  exit 1 when something is missing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="v1.37.2"
ETCD_VERSION="v3.6.16"
CACHE="${SHOPSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopstack}"
DEST="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

missing() {
  local b
  for b in kube-apiserver etcd kubectl; do
    [[ -x "$DEST/$b" ]] || return 0
  done
  return 1
}

if [[ "${1:-}" == "--check" ]]; then
  if missing; then exit 1; fi
  echo "$DEST"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "control-plane: the go command is missing; install Go 1.26 first" >&2
  exit 1
fi

mkdir -p "$DEST"
export CGO_ENABLED=0
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"

build() { # build <module dir> <package> <binary>
  local dir="$1" pkg="$2" bin="$3"
  if [[ -x "$DEST/$bin" ]]; then return; fi
  echo "control-plane: building $bin ($pkg); the first build takes several minutes" >&2
  local start=$SECONDS
  (cd "$ROOT/hack/tools/$dir" && go build -trimpath -ldflags "$ldflags" -o "$DEST/$bin.tmp" "$pkg")
  mv "$DEST/$bin.tmp" "$DEST/$bin"
  echo "control-plane: built $bin in $((SECONDS - start))s" >&2
}

build etcd go.etcd.io/etcd/server/v3 etcd
build kube k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
build kube k8s.io/kubernetes/cmd/kubectl kubectl

mkdir -p "$ROOT/bin"
ln -sfn "$DEST" "$ROOT/bin/k8s"
echo "$DEST"
