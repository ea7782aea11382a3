package controllers

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// validateSpec finds what the CRD schema cannot check cheaply (CEL's cost
// budget rules out regular expressions over unbounded map keys) but the API
// server would refuse in a child. A Shop with such a problem is reported,
// field named, and nothing is applied, rather than failing half-way.
func validateSpec(shop *shopv1.Shop) []string {
	var problems []string
	keys := make([]string, 0, len(shop.Spec.Scheduling.NodeSelector))
	for k := range shop.Spec.Scheduling.NodeSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, msg := range validation.IsQualifiedName(k) {
			problems = append(problems, fmt.Sprintf("spec.scheduling.nodeSelector: key %q: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(shop.Spec.Scheduling.NodeSelector[k]) {
			problems = append(problems, fmt.Sprintf("spec.scheduling.nodeSelector[%s]: value %q: %s", k, shop.Spec.Scheduling.NodeSelector[k], msg))
		}
	}
	return problems
}
