// Package v1alpha1 contains the Shop API, group shopstack.dev, version v1alpha1.
// +kubebuilder:object:generate=true
// +groupName=shopstack.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the Shop API.
	GroupVersion = schema.GroupVersion{Group: "shopstack.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the Shop types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Shop types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
