package builder

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

// renderYAML renders objects the way the operator applies them (apply.Desired),
// as one YAML stream. The hash annotation is left out: it changes with every
// field and would only add noise to a review of the golden files.
func renderYAML(t *testing.T, objs []client.Object) string {
	t.Helper()
	var b strings.Builder
	for _, obj := range objs {
		u, err := apply.Desired(obj)
		if err != nil {
			t.Fatalf("rendering %s: %v", kindName(obj), err)
		}
		ann := u.GetAnnotations()
		delete(ann, apply.HashAnnotation)
		if len(ann) == 0 {
			ann = nil
		}
		u.SetAnnotations(ann)
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatalf("marshalling %s: %v", kindName(obj), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// TestBuildGolden compares everything the sample Shop becomes with the files
// under testdata/. Run `go test ./internal/builder -update` to rewrite them
// after an intended change, and review the diff.
func TestBuildGolden(t *testing.T) {
	tests := map[string]*shopv1.Shop{
		"mesh-none":  sampleShop(shopv1.MeshNone),
		"mesh-istio": sampleShop(shopv1.MeshIstio),
	}
	for name, shop := range tests {
		t.Run(name, func(t *testing.T) {
			got := renderYAML(t, Build(shop, testInputs()))
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run `go test ./internal/builder -update` to create it): %v", err)
			}
			if string(want) != got {
				t.Errorf("Build(%s) differs from %s; if the change is intended, run `go test ./internal/builder -update` and review the diff.\n%s",
					name, path, goldenDiff(t, string(want), got))
			}
		})
	}
}

// goldenDiff explains how two YAML streams differ, object by object, with a
// line diff for each object that changed.
func goldenDiff(t *testing.T, want, got string) string {
	t.Helper()
	wantDocs, wantOrder := splitDocuments(t, want)
	gotDocs, gotOrder := splitDocuments(t, got)
	var b strings.Builder
	for _, k := range wantOrder {
		g, ok := gotDocs[k]
		switch {
		case !ok:
			fmt.Fprintf(&b, "%s: no longer built\n", k)
		case g != wantDocs[k]:
			fmt.Fprintf(&b, "%s (-want +got):\n%s\n", k, cmp.Diff(strings.Split(wantDocs[k], "\n"), strings.Split(g, "\n")))
		}
	}
	for _, k := range gotOrder {
		if _, ok := wantDocs[k]; !ok {
			fmt.Fprintf(&b, "%s: newly built\n", k)
		}
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "the same objects in a different order (-want +got):\n%s", cmp.Diff(wantOrder, gotOrder))
	}
	return b.String()
}

// splitDocuments splits a YAML stream into its documents, keyed Kind/name.
func splitDocuments(t *testing.T, stream string) (map[string]string, []string) {
	t.Helper()
	docs := map[string]string{}
	var order []string
	for _, doc := range strings.Split("\n"+stream, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("golden document is not YAML: %v\n%s", err, doc)
		}
		k := head.Kind + "/" + head.Metadata.Name
		docs[k] = doc
		order = append(order, k)
	}
	return docs, order
}
