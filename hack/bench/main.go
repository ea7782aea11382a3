// Command bench measures how fast the operator turns Shops into their
// children on the local control plane, against a floor measured in the same
// run: a bare client that writes the same rendered objects with the same verbs
// (server-side apply; create for the credentials Secrets), the same number of
// concurrent workers and the same client QPS and burst, with no status and no
// events. It prints the ratio operator/floor for 1 and for 50 Shops.
//
//	go run ./hack/bench [-shops 1,50] [-rounds 3]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
	"github.com/shopstack/shopstack/internal/builder"
	"github.com/shopstack/shopstack/internal/credentials"
	"github.com/shopstack/shopstack/internal/localcp"
	"github.com/shopstack/shopstack/internal/operator"
)

// The manager's defaults (cmd/main.go), used by both sides.
const (
	qps         = 50
	burst       = 100
	concurrency = 4
)

func main() {
	shopsFlag := flag.String("shops", "1,50", "comma-separated numbers of Shops to converge")
	rounds := flag.Int("rounds", 5, "alternating operator/floor runs per size; the median ratio is reported")
	sample := flag.String("f", "config/samples/shopstack_v1alpha1_shop.yaml", "the Shop to replicate")
	flag.Parse()
	if err := run(*shopsFlag, *rounds, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(sizes string, rounds int, samplePath string) error {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	raw, err := os.ReadFile(samplePath)
	if err != nil {
		return err
	}
	sample := &shopv1.Shop{}
	if err := yaml.UnmarshalStrict(raw, sample); err != nil {
		return err
	}
	env, cfg, err := localcp.Start(localcp.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	cfg.QPS, cfg.Burst = qps, burst
	admin := rest.CopyConfig(cfg)
	admin.QPS, admin.Burst = -1, 0 // the harness itself is not rate limited

	fmt.Printf("convergence: operator vs a bare server-side-apply client; QPS %d, burst %d, %d workers, sample %s\n",
		qps, burst, concurrency, samplePath)
	fmt.Printf("%-6s %-6s %12s %12s %8s\n", "shops", "round", "operator(s)", "floor(s)", "ratio")
	run := 0
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad number of shops %q", f)
		}
		var ratios []float64
		for r := 1; r <= rounds; r++ {
			run++
			// Alternate which side goes first so drift in the API server's
			// state (etcd growing) does not favour one.
			var op, floor time.Duration
			if r%2 == 1 {
				if op, err = operatorRun(cfg, admin, sample, n, fmt.Sprintf("op%d", run)); err != nil {
					return err
				}
				if floor, err = floorRun(cfg, admin, sample, n, fmt.Sprintf("fl%d", run)); err != nil {
					return err
				}
			} else {
				if floor, err = floorRun(cfg, admin, sample, n, fmt.Sprintf("fl%d", run)); err != nil {
					return err
				}
				if op, err = operatorRun(cfg, admin, sample, n, fmt.Sprintf("op%d", run)); err != nil {
					return err
				}
			}
			ratio := op.Seconds() / floor.Seconds()
			ratios = append(ratios, ratio)
			fmt.Printf("%-6d %-6d %12.2f %12.2f %8.2f\n", n, r, op.Seconds(), floor.Seconds(), ratio)
		}
		sort.Float64s(ratios)
		fmt.Printf("RESULT shops=%d median ratio operator/floor = %.2f (target <= 1.25)\n", n, ratios[len(ratios)/2])
	}
	return nil
}

// shopsFor makes n copies of the sample, each in its own namespace.
func shopsFor(sample *shopv1.Shop, n int, prefix string) []*shopv1.Shop {
	out := make([]*shopv1.Shop, n)
	for i := range out {
		s := sample.DeepCopy()
		s.Namespace = fmt.Sprintf("%s-%d", prefix, i)
		s.TypeMeta = metav1.TypeMeta{APIVersion: shopv1.GroupVersion.String(), Kind: "Shop"}
		out[i] = s
	}
	return out
}

// prepare makes the harness's own client and n Shops, each in a new namespace.
func prepare(ctx context.Context, admin *rest.Config, sample *shopv1.Shop, n int, prefix string) (client.Client, []*shopv1.Shop, error) {
	harness, err := client.New(admin, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return nil, nil, err
	}
	shops := shopsFor(sample, n, prefix)
	return harness, shops, createNamespaces(ctx, harness, shops)
}

func createNamespaces(ctx context.Context, c client.Client, shops []*shopv1.Shop) error {
	for _, s := range shops {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}); err != nil {
			return err
		}
	}
	return nil
}

// expected counts the children one Shop gets: the built objects plus the
// credentials Secrets.
func expected(shop *shopv1.Shop) int {
	return len(builder.Build(shop, builder.Inputs{JWKS: "x"})) + len(builder.AllCredentials)
}

// counter watches every kind of child across namespaces with the given
// prefix and reports when want distinct objects exist.
type counter struct {
	mu   sync.Mutex
	seen map[string]bool
	want int
	done chan struct{}
}

func watchChildren(ctx context.Context, cfg *rest.Config, prefix string, want int) (*counter, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	c := &counter{seen: map[string]bool{}, want: want, done: make(chan struct{})}
	kinds := append([]schema.GroupVersionKind{corev1.SchemeGroupVersion.WithKind("Secret")}, builder.ManagedKinds...)
	for _, gvk := range kinds {
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, err
		}
		w, err := dyn.Resource(m.Resource).Watch(ctx, metav1.ListOptions{LabelSelector: builder.LabelManagedBy + "=" + builder.ManagedByValue})
		if err != nil {
			return nil, err
		}
		go func() {
			for ev := range w.ResultChan() {
				if ev.Type != watch.Added {
					continue
				}
				o, ok := ev.Object.(metav1.Object)
				if !ok || !strings.HasPrefix(o.GetNamespace(), prefix+"-") {
					continue
				}
				c.add(gvk.Kind + "/" + o.GetNamespace() + "/" + o.GetName())
			}
		}()
	}
	return c, nil
}

func (c *counter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[id] {
		return
	}
	c.seen[id] = true
	if len(c.seen) == c.want {
		close(c.done)
	}
}

func (c *counter) wait(timeout time.Duration) error {
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("only %d of %d children after %s", len(c.seen), c.want, timeout)
	}
}

// operatorRun times the operator from creating n Shops until all their children exist.
func operatorRun(cfg, admin *rest.Config, sample *shopv1.Shop, n int, prefix string) (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	harness, shops, err := prepare(ctx, admin, sample, n, prefix)
	if err != nil {
		return 0, err
	}
	mgr, err := operator.New(cfg, operator.Options{
		Metrics: metricsserver.Options{BindAddress: "0"}, ProbeAddr: "0", Concurrency: concurrency,
		RequeueAfter: time.Minute, Version: builder.DefaultVersion, SkipNameValidate: true,
	})
	if err != nil {
		return 0, err
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() { cancel(); <-mgrDone }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return 0, errors.New("the operator's cache did not sync")
	}
	// Warm up: one Shop converged before the clock starts, so the run
	// measures a running operator, not its start.
	warm := shopsFor(sample, 1, prefix+"w")
	if err := createNamespaces(ctx, harness, warm); err != nil {
		return 0, err
	}
	warmCnt, err := watchChildren(ctx, admin, prefix+"w", expected(sample))
	if err != nil {
		return 0, err
	}
	if err := harness.Create(ctx, warm[0]); err != nil {
		return 0, err
	}
	if err := warmCnt.wait(time.Minute); err != nil {
		return 0, fmt.Errorf("operator warm-up: %w", err)
	}
	cnt, err := watchChildren(ctx, admin, prefix, n*expected(sample))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, s := range shops {
		if err := harness.Create(ctx, s); err != nil {
			return 0, err
		}
	}
	if err := cnt.wait(5 * time.Minute); err != nil {
		return 0, fmt.Errorf("operator: %w", err)
	}
	return time.Since(start), nil
}

// floorRun times a bare client writing the same objects with the same verbs.
func floorRun(cfg, admin *rest.Config, sample *shopv1.Shop, n int, prefix string) (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	harness, shops, err := prepare(ctx, admin, sample, n, prefix)
	if err != nil {
		return 0, err
	}
	writer, err := client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return 0, err
	}
	// Warm up the same way: one Shop written before the clock starts.
	warm := shopsFor(sample, 1, prefix+"w")
	if err := createNamespaces(ctx, harness, warm); err != nil {
		return 0, err
	}
	warm[0].UID = "00000000-0000-0000-0000-999999999999"
	if err := writeShop(ctx, writer, warm[0]); err != nil {
		return 0, err
	}
	cnt, err := watchChildren(ctx, admin, prefix, n*expected(sample))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	work := make(chan *shopv1.Shop)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for s := range work {
				if err := writeShop(ctx, writer, s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i, s := range shops {
		s.UID = types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)) // owner references need one
		work <- s
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if err := cnt.wait(5 * time.Minute); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	return time.Since(start), nil
}

// writeShop generates the credentials and writes every child of one Shop,
// as the operator's first pass does, without reading anything back.
func writeShop(ctx context.Context, c client.Client, shop *shopv1.Shop) error {
	in := builder.Inputs{OperatorVersion: builder.DefaultVersion}
	for _, kind := range builder.AllCredentials {
		data, err := credentials.Generate(kind)
		if err != nil {
			return err
		}
		if kind == builder.CredJWTSigning {
			if in.JWKS, err = credentials.JWKS(data); err != nil {
				return err
			}
		}
		if _, err := apply.CreateOnce(ctx, c, builder.CredentialSecret(shop, kind, data)); err != nil {
			return err
		}
	}
	for _, obj := range builder.Build(shop, in) {
		if _, err := apply.Apply(ctx, c, obj, nil); err != nil {
			return err
		}
	}
	return nil
}
