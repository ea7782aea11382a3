// Package builder turns a Shop into the objects it should become. Every function
// here is pure: the same Shop and Inputs give the same objects, with no I/O, so
// the reconciler, `manager render` and the tests share one source of truth.
// A builder that returns nil means the object should not exist.
package builder

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// Label keys every child carries.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelVersion   = "app.kubernetes.io/version"
	// LabelTier is "service" on the four services' pods and "data" on the stores'.
	LabelTier = "shopstack.dev/tier"

	// TierService and TierData are the values of LabelTier.
	TierService = "service"
	TierData    = "data"

	// ManagedByValue selects what the operator's cache holds.
	ManagedByValue = "shopstack-operator"
	// NameValue is the application name shared by all children.
	NameValue = "shopstack"
)

// Components that are not services.
const (
	ComponentPostgres    = "postgres"
	ComponentRedis       = "redis"
	ComponentGateway     = "gateway"
	ComponentSecurity    = "security"
	ComponentCredentials = "credentials"
	ComponentCA          = "ca"
)

// Labels are the labels of every child of shop that belongs to component.
func Labels(shop *shopv1.Shop, component string) map[string]string {
	return map[string]string{
		LabelName:      NameValue,
		LabelInstance:  shop.Name,
		LabelComponent: component,
		LabelPartOf:    NameValue,
		LabelManagedBy: ManagedByValue,
	}
}

// SelectorLabels select the pods of one component of one Shop. They are a
// subset of Labels and never change, since Deployment selectors are immutable.
func SelectorLabels(shop *shopv1.Shop, component string) map[string]string {
	return map[string]string{
		LabelName:      NameValue,
		LabelInstance:  shop.Name,
		LabelComponent: component,
	}
}

// InstanceSelector selects every pod of one Shop.
func InstanceSelector(shop *shopv1.Shop) map[string]string {
	return map[string]string{LabelName: NameValue, LabelInstance: shop.Name}
}

// OwnerReference makes shop the controller of a child.
func OwnerReference(shop *shopv1.Shop) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         shopv1.GroupVersion.String(),
		Kind:               "Shop",
		Name:               shop.Name,
		UID:                shop.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// ObjectMeta is the metadata of a child owned by shop: its name, namespace,
// labels and controller owner reference, from one place for every builder.
func ObjectMeta(shop *shopv1.Shop, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       shop.Namespace,
		Labels:          Labels(shop, component),
		OwnerReferences: []metav1.OwnerReference{OwnerReference(shop)},
	}
}

// Name joins the Shop's name and parts into a child's name.
func Name(shop *shopv1.Shop, parts ...string) string {
	n := shop.Name
	for _, p := range parts {
		n += "-" + p
	}
	return n
}

// ServiceAccountName is the identity of one service.
func ServiceAccountName(shop *shopv1.Shop, svc shopv1.ServiceName) string {
	return Name(shop, string(svc))
}

// SPIFFEID is the identity of a service account in the Shop's trust domain.
func SPIFFEID(shop *shopv1.Shop, serviceAccount string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", TrustDomain(shop), shop.Namespace, serviceAccount)
}

// TrustDomain of the Shop's SPIFFE IDs.
func TrustDomain(shop *shopv1.Shop) string {
	if shop.Spec.Security.TrustDomain != "" {
		return shop.Spec.Security.TrustDomain
	}
	return "cluster.local"
}

// Mesh is the Shop's mesh mode with its default.
func Mesh(shop *shopv1.Shop) shopv1.MeshMode {
	if shop.Spec.Security.Mesh == "" {
		return shopv1.MeshNone
	}
	return shop.Spec.Security.Mesh
}

// NetworkPoliciesEnabled is the Shop's networkPolicies switch with its default.
func NetworkPoliciesEnabled(shop *shopv1.Shop) bool {
	return shop.Spec.Security.NetworkPolicies == nil || *shop.Spec.Security.NetworkPolicies
}
