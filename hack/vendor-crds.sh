#!/usr/bin/env bash
# Copies the released CRDs of the projects the operator writes objects for out of
# their Go modules (the versions pinned in go.mod) into config/thirdparty, so the
# local control plane validates generated objects against the real schemas.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT=config/thirdparty
rm -rf "$OUT"; mkdir -p "$OUT"
dir() { go list -m -f '{{.Dir}}' "$1"; }
ver() { go list -m -f '{{.Version}}' "$1"; }

cm=$(dir github.com/cert-manager/cert-manager)
mkdir -p "$OUT/cert-manager"
cp "$cm"/deploy/crds/cert-manager.io_*.yaml "$OUT/cert-manager/"

gw=$(dir sigs.k8s.io/gateway-api)
mkdir -p "$OUT/gateway-api"
for k in gatewayclasses gateways httproutes referencegrants backendtlspolicies; do
  cp "$gw/config/crd/standard/gateway.networking.k8s.io_$k.yaml" "$OUT/gateway-api/"
done

is=$(dir istio.io/api)
mkdir -p "$OUT/istio"
cp "$is/kubernetes/customresourcedefinitions.gen.yaml" "$OUT/istio/crds.yaml"
chmod -R u+w "$OUT"

cat > "$OUT/VERSIONS" <<V
# Third-party CRDs, copied by hack/vendor-crds.sh from the Go modules in go.mod.
cert-manager $(ver github.com/cert-manager/cert-manager) deploy/crds (cert-manager.io only)
gateway-api $(ver sigs.k8s.io/gateway-api) config/crd/standard
istio $(ver istio.io/api) kubernetes/customresourcedefinitions.gen.yaml
V
echo "vendored CRDs into $OUT"
