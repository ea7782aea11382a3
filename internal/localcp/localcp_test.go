package localcp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// children lists the kube-apiserver and etcd processes this test process started.
func children(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		comm, rest := s[open+1:close], strings.Fields(s[close+1:])
		if len(rest) > 1 && rest[1] == me && (comm == "kube-apiserver" || comm == "etcd") {
			out = append(out, comm)
		}
	}
	return out
}

func TestAFailedStartLeavesNoProcessBehind(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Assets(root); err != nil {
		t.Skip(err)
	}
	// The control plane starts, then the API server refuses a CRD whose
	// validation rule names a field that does not exist.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(badCRD), 0o644); err != nil {
		t.Fatal(err)
	}
	env, _, err := Start(Options{ThirdParty: []string{}, CRDPaths: []string{bad}})
	if err == nil {
		_ = env.Stop()
		t.Fatal("Start succeeded with a CRD the API server must refuse")
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("after the failed start, %v are still running", left)
	}
}

const badCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations:
        - rule: self.noSuchField > 0
`
