package render

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/config/crd"
)

// Schema checks and defaults Shops with the CRD's own OpenAPI schema, CEL
// rules and defaults, the way the API server does on create, so a Shop that
// the cluster would refuse is refused here too with the same field paths.
type Schema struct {
	structural *structuralschema.Structural
	openapi    validation.SchemaValidator
	cel        *cel.Validator
}

// LoadSchema reads the embedded Shop CRD.
func LoadSchema() (*Schema, error) {
	v1 := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(crd.Shop, v1); err != nil {
		return nil, fmt.Errorf("reading the Shop CRD: %w", err)
	}
	for _, v := range v1.Spec.Versions {
		if v.Name != shopv1.GroupVersion.Version || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		props := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, props, nil); err != nil {
			return nil, err
		}
		s, err := structuralschema.NewStructural(props)
		if err != nil {
			return nil, err
		}
		openapi, _, err := validation.NewSchemaValidator(props)
		if err != nil {
			return nil, err
		}
		return &Schema{structural: s, openapi: openapi, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}, nil
	}
	return nil, errors.New("the Shop CRD has no schema for " + shopv1.GroupVersion.Version)
}

// Admit defaults shop and validates it; the error lists every problem with
// its field path.
func (s *Schema) Admit(shop *shopv1.Shop) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(shop)
	if err != nil {
		return err
	}
	defaulting.Default(obj, s.structural)
	errs := validation.ValidateCustomResource(nil, obj, s.openapi)
	if len(errs) == 0 {
		celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("Shop %s/%s is invalid: %w", shop.Namespace, shop.Name, errs.ToAggregate())
	}
	defaulted := &shopv1.Shop{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, defaulted); err != nil {
		return err
	}
	*shop = *defaulted
	return nil
}
