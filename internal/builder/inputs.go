package builder

import (
	"cmp"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// Inputs are what the builders need besides the Shop: facts about the operator
// and values read from the cluster. They are plain data so builders stay pure.
type Inputs struct {
	// OperatorVersion is the image tag of the services when spec.version is unset.
	OperatorVersion string
	// OperatorNamespace is where the manager runs; the Postgres NetworkPolicy lets it in.
	OperatorNamespace string
	// JWKS is the JSON Web Key Set of the Shop's token signing key. Empty until
	// the signing key Secret exists; the JWKS ConfigMap and RequestAuthentication
	// are built only once it is known.
	JWKS string
	// CABundle is the PEM CA certificate that issued the services'
	// certificates (ca.crt of their Secrets); empty until cert-manager issued one.
	CABundle string
}

// Default images of the data tier: the official images.
const (
	DefaultPostgresImage = "docker.io/library/postgres:17"
	DefaultRedisImage    = "docker.io/library/redis:7.4"
	DefaultOperatorNS    = "shopstack-system"
	DefaultVersion       = "0.1.0"
)

// ImageTag is the tag of the service images.
func ImageTag(shop *shopv1.Shop, in Inputs) string {
	return cmp.Or(shop.Spec.Version, in.OperatorVersion, DefaultVersion)
}

// ServiceImage is the image of one service.
func ServiceImage(shop *shopv1.Shop, in Inputs, svc shopv1.ServiceName) string {
	repo := cmp.Or(shop.Spec.ImageRepository, "ghcr.io/shopstack")
	return repo + "/shopstack-" + string(svc) + ":" + ImageTag(shop, in)
}

// JWTIssuer is the iss of the Shop's tokens: the public URL when the Shop has a
// gateway host, else the user service's in-cluster URL.
func JWTIssuer(shop *shopv1.Shop) string {
	if len(shop.Spec.Gateway.Hosts) > 0 {
		return "https://" + string(shop.Spec.Gateway.Hosts[0])
	}
	return "https://" + Name(shop, string(shopv1.ServiceUser)) + "." + shop.Namespace + ".svc"
}

// JWTAudience is the aud of the Shop's tokens.
func JWTAudience(shop *shopv1.Shop) string {
	return "shopstack:" + shop.Namespace + "/" + shop.Name
}

// GatewayURL is where end users reach the Shop, or "" without a gateway.
func GatewayURL(shop *shopv1.Shop) string {
	if len(shop.Spec.Gateway.Hosts) == 0 {
		return ""
	}
	return "https://" + string(shop.Spec.Gateway.Hosts[0])
}
