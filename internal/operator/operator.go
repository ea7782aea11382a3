// Package operator assembles the manager: scheme, cache, the Shop controller
// and health checks. cmd/main.go, the demo, the benchmark and the integration
// tests all start the operator through New, so they run the same thing.
package operator

import (
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/controllers"
	"github.com/shopstack/shopstack/internal/builder"
)

// NewScheme registers every API group the operator reads or writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(shopv1.AddToScheme(s))
	utilruntime.Must(cmapi.AddToScheme(s))
	utilruntime.Must(securityv1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// CacheOptions keep only what the operator owns in memory: children carry the
// managed-by label; Shops are cached whole. Managed fields are dropped from
// cached objects except Deployments, whose spec.replicas owner decides the
// handover to an autoscaler.
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{builder.LabelManagedBy: builder.ManagedByValue})
	keep := func(o any) (any, error) { return o, nil }
	return cache.Options{
		DefaultLabelSelector: managed,
		DefaultTransform:     cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&shopv1.Shop{}:       {Label: labels.Everything()},
			&appsv1.Deployment{}: {Label: managed, Transform: keep},
		},
	}
}

// Options configure the manager.
type Options struct {
	Metrics          metricsserver.Options
	ProbeAddr        string
	LeaderElect      bool
	Concurrency      int
	RequeueAfter     time.Duration
	Version          string
	Namespace        string
	SkipNameValidate bool // several managers in one process (tests)
}

// New builds a manager running the Shop controller against cfg.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	ctrlOpts := ctrl.Options{
		Scheme:                        NewScheme(),
		Metrics:                       o.Metrics,
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              "shopstack-operator.shopstack.dev",
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         CacheOptions(),
	}
	if o.SkipNameValidate {
		ctrlOpts.Controller.SkipNameValidation = ptrTo(true)
	}
	mgr, err := ctrl.NewManager(cfg, ctrlOpts)
	if err != nil {
		return nil, err
	}
	r := &controllers.ShopReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("shopstack-operator"),
		Inputs:       builder.Inputs{OperatorVersion: o.Version, OperatorNamespace: o.Namespace},
		RequeueAfter: o.RequeueAfter,
	}
	if err := r.SetupWithManager(mgr, o.Concurrency); err != nil {
		return nil, err
	}
	if o.ProbeAddr != "" && o.ProbeAddr != "0" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

func ptrTo[T any](v T) *T { return &v }
