//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
)

// config is what the environment chooses (see the package documentation).
type config struct {
	kubectl         string
	version         string
	nextVersion     string
	pullPolicy      corev1.PullPolicy
	postgresImage   string
	redisImage      string
	probeImage      string
	namespace       string
	monitoringNS    string
	podCIDR         string
	serviceCIDR     string
	skipContainment bool
	onNode          bool // the suite runs on the cluster's only node (the local cluster)
	keep            bool
	repoRoot        string
}

// The operator as config/default installs it.
const (
	operatorNamespace  = "shopstack-system"
	operatorDeployment = "shopstack-controller-manager"
	shopName           = "e2e"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func loadConfig() (config, error) {
	c := config{
		kubectl:         env("E2E_KUBECTL", "kubectl"),
		version:         env("E2E_VERSION", "0.1.0"),
		nextVersion:     env("E2E_NEXT_VERSION", "0.1.1"),
		pullPolicy:      corev1.PullPolicy(env("E2E_PULL_POLICY", string(corev1.PullNever))),
		postgresImage:   env("E2E_POSTGRES_IMAGE", "shopstack.local/postgres:15-bookworm"),
		redisImage:      env("E2E_REDIS_IMAGE", "shopstack.local/redis:7.0-bookworm"),
		probeImage:      env("E2E_PROBE_IMAGE", "shopstack.local/e2e-probe:dev"),
		namespace:       env("E2E_NAMESPACE", "shopstack-e2e"),
		podCIDR:         env("E2E_POD_CIDR", "10.244.0.0/16"),
		serviceCIDR:     env("E2E_SERVICE_CIDR", "10.96.0.0/16"),
		skipContainment: os.Getenv("E2E_SKIP_CONTAINMENT") == "1",
		onNode:          os.Getenv("E2E_ON_NODE") == "1",
		keep:            os.Getenv("E2E_KEEP") == "1",
	}
	c.monitoringNS = c.namespace + "-monitoring"
	switch c.pullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return c, fmt.Errorf("E2E_PULL_POLICY=%q: want Always, IfNotPresent or Never", c.pullPolicy)
	}
	if c.version == c.nextVersion {
		return c, fmt.Errorf("E2E_VERSION and E2E_NEXT_VERSION are both %q: the rollout check needs two versions", c.version)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(root, "config", "default", "kustomization.yaml")); err != nil {
		return c, fmt.Errorf("the repository root (config/default) is not at %s: %w", root, err)
	}
	c.repoRoot = root
	return c, nil
}
