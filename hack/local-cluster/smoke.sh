#!/usr/bin/env bash
# Quick checks of a running local cluster, each in a namespace of its own that
# is removed afterwards. up.sh runs "cert-manager storage".
#
#   hack/local-cluster/smoke.sh [cert-manager] [storage] [pod] [metrics]   (none: all)
#
#   cert-manager  SelfSigned Issuer -> CA Certificate -> CA Issuer -> Certificate Ready, Secret written
#   storage       a claim of the default StorageClass is bound; deleting it removes the volume
#   pod           a pause pod gets an address from the pod range and runs
#   metrics       kubectl top node answers
set -euo pipefail
# shellcheck source=hack/local-cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KUBECTL="$(kubectl_bin)"
[[ -f "$ADMIN_KUBECONFIG" ]] || die "no cluster: $ADMIN_KUBECONFIG is missing; run hack/local-cluster/up.sh"

checks=("$@")
((${#checks[@]})) || checks=(cert-manager storage pod metrics)

namespace() { # namespace NAME: a fresh namespace, removed on exit
  k delete namespace "$1" --ignore-not-found --wait=true --timeout=60s >/dev/null
  k create namespace "$1" >/dev/null
  cleanup+=("$1")
}
cleanup=()
trap 'for n in "${cleanup[@]}"; do k delete namespace "$n" --wait=false >/dev/null 2>&1 || true; done' EXIT

smoke_cert_manager() {
  local ns=shopstack-smoke-cert-manager start=$SECONDS
  namespace "$ns"
  k -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: smoke-ca}
spec:
  isCA: true
  commonName: smoke-ca
  secretName: smoke-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: selfsigned, kind: Issuer, group: cert-manager.io}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: smoke-ca}
spec: {ca: {secretName: smoke-ca}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: smoke-leaf}
spec:
  secretName: smoke-leaf
  dnsNames: [smoke.shopstack-smoke-cert-manager.svc]
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: smoke-ca, kind: Issuer, group: cert-manager.io}
EOF
  wait_for 90 "cert-manager to issue the smoke Certificate from a CA Issuer" cert-manager \
    k -n "$ns" wait --for=condition=Ready certificate/smoke-leaf --timeout=2s
  local ca
  ca="$(k -n "$ns" get secret smoke-leaf -o jsonpath='{.data.ca\.crt}')"
  [[ -n "$ca" && -n "$(k -n "$ns" get secret smoke-leaf -o jsonpath='{.data.tls\.crt}')" ]] ||
    die "the Secret smoke-leaf lacks tls.crt or ca.crt"
  log "smoke: cert-manager issued a Certificate from a CA Issuer in $((SECONDS - start))s"
}

smoke_storage() {
  local ns=shopstack-smoke-storage start=$SECONDS pv
  namespace "$ns"
  k -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: smoke}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
EOF
  wait_for 60 "the default StorageClass to bind a claim" provisioner \
    k -n "$ns" wait --for=jsonpath='{.status.phase}'=Bound pvc/smoke --timeout=2s
  pv="$(k -n "$ns" get pvc smoke -o jsonpath='{.spec.volumeName}')"
  [[ -d "$STATE/volumes/$pv" ]] || die "the volume directory $STATE/volumes/$pv is missing"
  k -n "$ns" delete pvc smoke --wait=true --timeout=60s >/dev/null
  wait_for 60 "the released volume $pv to be deleted" provisioner \
    bash -c "! '$KUBECTL' --kubeconfig '$ADMIN_KUBECONFIG' get pv '$pv' >/dev/null 2>&1 && [[ ! -e '$STATE/volumes/$pv' ]]"
  log "smoke: a claim was bound to a hostPath volume and the volume removed after it in $((SECONDS - start))s"
}

smoke_pod() {
  local ns=shopstack-smoke-pod start=$SECONDS ip
  namespace "$ns"
  k -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: pause}
spec:
  automountServiceAccountToken: false
  containers:
  - name: pause
    image: $PAUSE_IMAGE
    imagePullPolicy: Never
    securityContext: {runAsNonRoot: true, runAsUser: 65535, allowPrivilegeEscalation: false}
EOF
  wait_for 60 "a pod to run" kubelet k -n "$ns" wait --for=condition=Ready pod/pause --timeout=2s
  ip="$(k -n "$ns" get pod pause -o jsonpath='{.status.podIP}')"
  [[ "$ip" == 10.244.0.* ]] || die "the pod got address '$ip', not one of $POD_CIDR"
  log "smoke: a pod ran with address $ip in $((SECONDS - start))s"
}

smoke_metrics() {
  wait_for 120 "kubectl top node" metrics-server k top node "$NODE_NAME"
  log "smoke: $(k top node "$NODE_NAME" --no-headers)"
}

for c in "${checks[@]}"; do
  case "$c" in
    cert-manager) smoke_cert_manager ;;
    storage) smoke_storage ;;
    pod) smoke_pod ;;
    metrics) smoke_metrics ;;
    *) die "unknown check '$c' (cert-manager, storage, pod, metrics)" ;;
  esac
done
