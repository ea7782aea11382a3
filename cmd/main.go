// Command manager runs the shopstack operator, or renders a Shop's children
// without a cluster (`manager render -f shop.yaml`).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/shopstack/shopstack/internal/builder"
	"github.com/shopstack/shopstack/internal/operator"
	"github.com/shopstack/shopstack/internal/render"
)

// version is set at build time (-ldflags "-X main.version=...") and is the
// default tag of the service images.
var version = builder.DefaultVersion

func main() {
	if len(os.Args) > 1 && os.Args[1] == "render" {
		os.Exit(runRender(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runManager())
}

func runRender(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "-", "file with one or more Shops (YAML), - for standard input")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: manager render -f shop.yaml\n\nPrints every object the operator would create for each Shop, as YAML, without a cluster.\nCredentials Secrets are shown without their values.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintln(stderr, "render:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	shops, err := render.ParseShops(in)
	if err != nil {
		fmt.Fprintln(stderr, "render:", err)
		return 1
	}
	schema, err := render.LoadSchema()
	if err != nil {
		fmt.Fprintln(stderr, "render:", err)
		return 1
	}
	for _, shop := range shops {
		// The API server's checks and defaults, so what is printed is what
		// the operator would make of the Shop once the cluster accepted it.
		if err := schema.Admit(shop); err != nil {
			fmt.Fprintln(stderr, "render:", err)
			return 1
		}
	}
	if err := render.Write(stdout, shops, builder.Inputs{OperatorVersion: version, OperatorNamespace: operatorNamespace()}); err != nil {
		fmt.Fprintln(stderr, "render:", err)
		return 1
	}
	return 0
}

func operatorNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return builder.DefaultOperatorNS
}

func runManager() int {
	var (
		metricsAddr, probeAddr string
		secureMetrics          bool
		leaderElect            bool
		concurrency            int
		qps                    float64
		burst                  int
		requeueAfter           time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint; 0 turns it off")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "serve metrics over HTTPS, authenticated and authorized by the API server")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader, so that only one of several replicas reconciles")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 4, "Shops reconciled at the same time")
	flag.Float64Var(&qps, "kube-api-qps", 50, "requests per second to the API server")
	flag.IntVar(&burst, "kube-api-burst", 100, "burst of requests to the API server")
	flag.DurationVar(&requeueAfter, "requeue-after", 30*time.Second, "how soon a Shop whose workloads are not yet available is checked again")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		setupLog.Error(err, "no kubeconfig or in-cluster configuration")
		return 1
	}
	cfg.QPS = float32(qps)
	cfg.Burst = burst

	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := operator.New(cfg, operator.Options{
		Metrics:      metricsOpts,
		ProbeAddr:    probeAddr,
		LeaderElect:  leaderElect,
		Concurrency:  concurrency,
		RequeueAfter: requeueAfter,
		Version:      version,
		Namespace:    operatorNamespace(),
	})
	if err != nil {
		setupLog.Error(err, "creating the manager")
		return 1
	}
	setupLog.Info("starting the manager", "version", version)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "running the manager")
		return 1
	}
	return 0
}
