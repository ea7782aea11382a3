// Package crd embeds the generated Shop CRD, so tools such as
// `manager render` validate and default a Shop exactly as the API server does.
package crd

import _ "embed"

// Shop is config/crd/bases/shopstack.dev_shops.yaml, as `make manifests` wrote it.
//
//go:embed bases/shopstack.dev_shops.yaml
var Shop []byte
