# Shared by hack/e2e/local.sh and hack/e2e/kind.sh.
# shellcheck shell=bash

# check_operator_tag VERSION: the suite installs the operator from
# config/default, which names the operator image's tag; the images must be
# built with that tag, or the cluster would run (or try to pull) another
# operator than the one built here.
check_operator_tag() {
  local tag
  tag="$(awk '$1 == "newTag:" {print $2}' "$ROOT/config/manager/kustomization.yaml")"
  if [[ "$tag" != "$1" ]]; then
    echo "e2e: config/default installs the operator image tag '$tag' (config/manager/kustomization.yaml)," \
      "but VERSION=$1 builds the images as $1; run with VERSION=$tag, or set the image there first" \
      "(cd config/manager && kustomize edit set image controller=ghcr.io/shopstack/shopstack-operator:$1)" >&2
    exit 2
  fi
}
