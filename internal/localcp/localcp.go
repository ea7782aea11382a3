// Package localcp starts the local control plane: a real kube-apiserver and
// etcd (built by hack/control-plane.sh) with the Shop CRD and the real
// cert-manager, Gateway API and Istio CRDs installed, so the API server
// validates everything the operator writes. The integration tests, the demo
// and the benchmark all use it.
package localcp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The third-party CRD sets under config/thirdparty.
const (
	CertManager = "cert-manager"
	GatewayAPI  = "gateway-api"
	Istio       = "istio"
)

// AllThirdParty installs every third-party CRD set.
var AllThirdParty = []string{CertManager, GatewayAPI, Istio}

// Options choose what is installed.
type Options struct {
	// ThirdParty lists the CRD sets to install besides the Shop CRD; nil
	// installs all of them, an empty non-nil slice none.
	ThirdParty []string
	// CRDPaths are further CRD files or folders to install.
	CRDPaths []string
}

// RepoRoot finds the module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/shopstack/shopstack\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the shopstack repository")
		}
		dir = parent
	}
}

// Assets returns the folder holding kube-apiserver and etcd: KUBEBUILDER_ASSETS
// when set, else the cache hack/control-plane.sh fills.
func Assets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join(root, "hack", "control-plane.sh"), "--check").Output()
	if err != nil {
		return "", errors.New("kube-apiserver and etcd are not built yet: run `make control-plane` (or set KUBEBUILDER_ASSETS)")
	}
	return strings.TrimSpace(string(out)), nil
}

// Start starts a control plane. Stop it with env.Stop().
func Start(o Options) (*envtest.Environment, *rest.Config, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	assets, err := Assets(root)
	if err != nil {
		return nil, nil, err
	}
	paths := []string{filepath.Join(root, "config", "crd", "bases")}
	sets := o.ThirdParty
	if sets == nil {
		sets = AllThirdParty
	}
	for _, s := range sets {
		paths = append(paths, filepath.Join(root, "config", "thirdparty", s))
	}
	paths = append(paths, o.CRDPaths...)
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true},
	}
	// Room for many Shops' ClusterIP Services (the default /24 holds 254).
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		// envtest leaves the processes running when a later step (say,
		// installing a CRD the API server refuses) fails: stop them.
		_ = env.Stop()
		return nil, nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	return env, cfg, nil
}
