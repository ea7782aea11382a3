// Package integration runs the real manager against a real kube-apiserver and
// etcd with the Shop, cert-manager, Gateway API and Istio CRDs installed.
package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/localcp"
	"github.com/shopstack/shopstack/internal/operator"
)

var (
	cfg       *rest.Config
	k8sClient client.Client // reads straight from the API server, never from a cache
)

// requeue is short so tests see the operator revisit Shops that are not Ready.
const requeue = 500 * time.Millisecond

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	env, c, err := localcp.Start(localcp.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg = c
	k8sClient, err = client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := startManager(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		cancel()
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	cancel()
	<-stopped
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

// zapLevel logs only errors unless SHOPSTACK_TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("SHOPSTACK_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// startManager runs the operator as `manager` would, and returns a channel
// closed when it has stopped.
func startManager(ctx context.Context, cfg *rest.Config) (<-chan struct{}, error) {
	mgr, err := operator.New(cfg, operator.Options{
		Metrics:          metricsserver.Options{BindAddress: "0"},
		ProbeAddr:        "0",
		RequeueAfter:     requeue,
		Version:          "0.1.0",
		Namespace:        "shopstack-system",
		SkipNameValidate: true,
	})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return done, nil
}

var nsCounter atomic.Int32

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

type shopOption func(*shopv1.Shop)

// testShop is a small valid Shop; options change it.
func testShop(ns string, opts ...shopOption) *shopv1.Shop {
	s := &shopv1.Shop{
		TypeMeta:   metav1.TypeMeta{APIVersion: shopv1.GroupVersion.String(), Kind: "Shop"},
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: ns},
		Spec: shopv1.ShopSpec{
			Version: "0.1.0",
			Gateway: shopv1.GatewaySpec{Hosts: []shopv1.Hostname{"shop.example.com"}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withMesh(m shopv1.MeshMode) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Security.Mesh = m }
}

func withReplicas(svc shopv1.ServiceName, n int32) shopOption {
	return func(s *shopv1.Shop) { serviceOf(s, svc).Replicas = &n }
}

func withAutoscaling(svc shopv1.ServiceName, min, max int32) shopOption {
	return func(s *shopv1.Shop) {
		serviceOf(s, svc).Autoscaling = &shopv1.AutoscalingSpec{MinReplicas: min, MaxReplicas: max}
	}
}

func withDeletionPolicy(p shopv1.DeletionPolicy) shopOption {
	return func(s *shopv1.Shop) { s.Spec.DeletionPolicy = p }
}

func serviceOf(s *shopv1.Shop, svc shopv1.ServiceName) *shopv1.ServiceSpec {
	ptr := map[shopv1.ServiceName]**shopv1.ServiceSpec{
		shopv1.ServiceUser: &s.Spec.Services.User, shopv1.ServiceOrder: &s.Spec.Services.Order,
		shopv1.ServicePayment: &s.Spec.Services.Payment, shopv1.ServiceInventory: &s.Spec.Services.Inventory,
	}[svc]
	if *ptr == nil {
		*ptr = &shopv1.ServiceSpec{}
	}
	return *ptr
}

// createShop creates shop and returns it as stored (defaults filled in).
func createShop(t *testing.T, shop *shopv1.Shop) *shopv1.Shop {
	t.Helper()
	if err := k8sClient.Create(context.Background(), shop); err != nil {
		t.Fatalf("creating Shop: %v", err)
	}
	return getShop(t, shop.Namespace, shop.Name)
}

func getShop(t *testing.T, ns, name string) *shopv1.Shop {
	t.Helper()
	s := &shopv1.Shop{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("reading Shop %s: %v", name, err)
	}
	return s
}

// eventually retries check until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getObject reads any object by kind and name straight from the API server.
func getObject(ctx context.Context, apiVersion, kind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	return u, err
}
