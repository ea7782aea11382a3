package render

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
	"github.com/shopstack/shopstack/internal/builder"
)

const acme = `apiVersion: shopstack.dev/v1alpha1
kind: Shop
metadata:
  name: acme
  namespace: shop
spec:
  security:
    mesh: istio
  gateway:
    hosts: [shop.example.com]
`

func TestParseShops(t *testing.T) {
	tests := map[string]struct {
		input string
		want  []string // namespace/name of each Shop
	}{
		"one Shop": {
			input: acme,
			want:  []string{"shop/acme"},
		},
		"several documents": {
			input: acme + "---\n" + strings.ReplaceAll(acme, "name: acme", "name: beta"),
			want:  []string{"shop/acme", "shop/beta"},
		},
		"a leading separator and empty documents": {
			input: "---\n" + acme + "---\n\n---\n",
			want:  []string{"shop/acme"},
		},
		"the namespace defaults to default": {
			input: "apiVersion: shopstack.dev/v1alpha1\nkind: Shop\nmetadata:\n  name: solo\n",
			want:  []string{"default/solo"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			shops, err := ParseShops(strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range shops {
				got = append(got, s.Namespace+"/"+s.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Shops (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseShopsKeepsTheSpec(t *testing.T) {
	shops, err := ParseShops(strings.NewReader(acme))
	if err != nil {
		t.Fatal(err)
	}
	s := shops[0].Spec
	if s.Security.Mesh != shopv1.MeshIstio || len(s.Gateway.Hosts) != 1 || s.Gateway.Hosts[0] != "shop.example.com" {
		t.Errorf("spec = %+v, want mesh istio and host shop.example.com", s)
	}
}

func TestParseShopsRefusesBadInput(t *testing.T) {
	tests := map[string]struct {
		input    string
		wantText []string // the error must name these
	}{
		"an unknown field": {
			input:    strings.Replace(acme, "mesh: istio", "mesh: istio\n    meshh: none", 1),
			wantText: []string{"document 1", "meshh"},
		},
		"an unknown field in the second document": {
			input:    acme + "---\n" + strings.Replace(acme, "spec:", "spec:\n  replicas: 3", 1),
			wantText: []string{"document 2", "replicas"},
		},
		"another kind": {
			input:    strings.Replace(acme, "kind: Shop", "kind: Deployment", 1),
			wantText: []string{"document 1", "Deployment"},
		},
		"another API version": {
			input:    strings.Replace(acme, "shopstack.dev/v1alpha1", "shopstack.dev/v2", 1),
			wantText: []string{"shopstack.dev/v2"},
		},
		"no kind at all": {
			input:    "metadata:\n  name: acme\n",
			wantText: []string{"kind Shop"},
		},
		"a missing name": {
			input:    strings.Replace(acme, "  name: acme\n", "", 1),
			wantText: []string{"document 1", "metadata.name"},
		},
		"nothing": {
			input:    "\n---\n",
			wantText: []string{"no Shop"},
		},
		"not YAML": {
			input:    "kind: [",
			wantText: []string{"document 1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			shops, err := ParseShops(strings.NewReader(tc.input))
			if err == nil {
				t.Fatalf("ParseShops accepted the input and returned %d Shops", len(shops))
			}
			for _, want := range tc.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseShopsReportsReadErrors(t *testing.T) {
	if _, err := ParseShops(failingReader{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("error = %v, want the reader's", err)
	}
}

// documents decodes a YAML stream into its documents.
func documents(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("the output is not a YAML stream: %v", err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func render(t *testing.T, input string, in builder.Inputs) (*bytes.Buffer, []*shopv1.Shop) {
	t.Helper()
	shops, err := ParseShops(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Write(&out, shops, in); err != nil {
		t.Fatal(err)
	}
	return &out, shops
}

func kindName(doc map[string]any) string {
	meta, _ := doc["metadata"].(map[string]any)
	return doc["kind"].(string) + "/" + meta["name"].(string)
}

func TestWriteRendersEveryChild(t *testing.T) {
	in := builder.Inputs{OperatorVersion: "0.1.0", OperatorNamespace: "shopstack-system"}
	out, shops := render(t, acme, in)
	docs := documents(t, out)

	var want []string
	for _, kind := range builder.AllCredentials {
		want = append(want, "Secret/"+builder.CredentialSecretName(shops[0], kind))
	}
	in.JWKS = PlaceholderJWKS
	for _, obj := range builder.Build(shops[0], in) {
		want = append(want, obj.GetObjectKind().GroupVersionKind().Kind+"/"+obj.GetName())
	}
	var got []string
	for _, d := range docs {
		got = append(got, kindName(d))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rendered objects (-want +got):\n%s", diff)
	}
}

func TestWriteShowsNoSecretValues(t *testing.T) {
	out, _ := render(t, acme, builder.Inputs{})
	var secrets int
	for _, d := range documents(t, out) {
		if d["kind"] != "Secret" {
			continue
		}
		secrets++
		for _, field := range []string{"data", "stringData"} {
			if _, ok := d[field]; ok {
				t.Errorf("%s has %s", kindName(d), field)
			}
		}
	}
	if secrets != len(builder.AllCredentials) {
		t.Errorf("rendered %d Secrets, want %d", secrets, len(builder.AllCredentials))
	}
}

func TestWriteLeavesOutTheHashAnnotation(t *testing.T) {
	out, _ := render(t, acme, builder.Inputs{})
	if strings.Contains(out.String(), apply.HashAnnotation) {
		t.Errorf("the output carries %s, which means nothing to a reader", apply.HashAnnotation)
	}
}

func TestWriteUsesAPlaceholderJWKS(t *testing.T) {
	out, _ := render(t, acme, builder.Inputs{})
	var found bool
	for _, d := range documents(t, out) {
		if kindName(d) != "ConfigMap/acme-jwks" {
			continue
		}
		found = true
		data := d["data"].(map[string]any)
		if got := data[builder.JWKSKey]; got != PlaceholderJWKS {
			t.Errorf("JWKS = %v, want the placeholder %s", got, PlaceholderJWKS)
		}
	}
	if !found {
		t.Error("no JWKS ConfigMap: without a cluster the placeholder should stand in")
	}
}

func TestWriteSeveralShops(t *testing.T) {
	out, shops := render(t, acme+"---\n"+strings.ReplaceAll(acme, "name: acme", "name: beta"), builder.Inputs{})
	if len(shops) != 2 {
		t.Fatalf("parsed %d Shops", len(shops))
	}
	text := out.String()
	instances := map[string]int{}
	for _, d := range documents(t, strings.NewReader(text)) {
		meta := d["metadata"].(map[string]any)
		labels := meta["labels"].(map[string]any)
		instances[labels[builder.LabelInstance].(string)]++
	}
	if instances["acme"] == 0 || instances["acme"] != instances["beta"] {
		t.Errorf("objects per Shop = %v, want the same non-zero count for acme and beta", instances)
	}
	if c := strings.Count(text, "# Shop shop/"); c != 2 {
		t.Errorf("got %d Shop header comments, want 2", c)
	}
}

// Write renders objects exactly as the operator applies them, minus the hash.
func TestWriteMatchesWhatIsApplied(t *testing.T) {
	in := builder.Inputs{JWKS: PlaceholderJWKS}
	out, shops := render(t, acme, in)
	docs := documents(t, out)
	objs := builder.Build(shops[0], in)
	byName := map[string]client.Object{}
	for _, o := range objs {
		byName[o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName()] = o
	}
	for _, d := range docs {
		obj, ok := byName[kindName(d)]
		if !ok {
			continue // the credentials Secrets
		}
		u, err := apply.Desired(obj)
		if err != nil {
			t.Fatal(err)
		}
		if !apply.Contains(d, withoutHash(u.Object)) {
			t.Errorf("%s as rendered differs from what is applied", kindName(d))
		}
	}
}

func withoutHash(m map[string]any) map[string]any {
	meta := m["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	delete(ann, apply.HashAnnotation)
	if len(ann) == 0 {
		delete(meta, "annotations")
	}
	return m
}
