// Package render prints every child of a Shop as YAML without a cluster, from
// the same builders the reconciler uses: for reviews and GitOps diffs.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
	"github.com/shopstack/shopstack/internal/builder"
)

// PlaceholderJWKS stands in for the public keys, which exist only once the
// operator has generated the signing key in the cluster.
const PlaceholderJWKS = `{"keys":[]}`

// ParseShops reads one or more Shops from a YAML stream, refusing unknown
// fields and other kinds with a message that names them.
func ParseShops(r io.Reader) ([]*shopv1.Shop, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var shops []*shopv1.Shop
	for i, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		shop := &shopv1.Shop{}
		if err := yaml.UnmarshalStrict(doc, shop); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if shop.APIVersion != shopv1.GroupVersion.String() || shop.Kind != "Shop" {
			return nil, fmt.Errorf("document %d: want apiVersion %s and kind Shop, got %q %q", i+1, shopv1.GroupVersion, shop.APIVersion, shop.Kind)
		}
		if shop.Name == "" {
			return nil, fmt.Errorf("document %d: metadata.name is required", i+1)
		}
		if shop.Namespace == "" {
			shop.Namespace = "default"
		}
		shops = append(shops, shop)
	}
	if len(shops) == 0 {
		return nil, errors.New("no Shop found in the input")
	}
	return shops, nil
}

func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimRight(line, " \t\r") == "---" {
			docs = append(docs, []byte(strings.Join(cur, "\n")))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, []byte(strings.Join(cur, "\n")))
}

// Write renders every child of each Shop to w as a YAML stream. Credentials
// Secrets appear without their values.
func Write(w io.Writer, shops []*shopv1.Shop, in builder.Inputs) error {
	if in.JWKS == "" {
		in.JWKS = PlaceholderJWKS
	}
	for _, shop := range shops {
		fmt.Fprintf(w, "# Shop %s/%s: the objects the operator creates.\n", shop.Namespace, shop.Name)
		for _, kind := range builder.AllCredentials {
			if err := writeObject(w, builder.CredentialSecret(shop, kind, nil)); err != nil {
				return err
			}
		}
		for _, obj := range builder.Build(shop, in) {
			if err := writeObject(w, obj); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeObject(w io.Writer, obj client.Object) error {
	u, err := apply.Desired(obj)
	if err != nil {
		return fmt.Errorf("rendering %s: %w", obj.GetName(), err)
	}
	ann := u.GetAnnotations()
	delete(ann, apply.HashAnnotation)
	if len(ann) == 0 {
		ann = nil
	}
	u.SetAnnotations(ann)
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "---\n%s", b)
	return err
}
