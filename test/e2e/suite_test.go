//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
	"github.com/shopstack/shopstack/internal/operator"
)

// suite is the state the ordered checks share.
type suite struct {
	cfg  config
	c    client.Client // straight to the API server, no cache
	shop *shopv1.Shop  // name and namespace, for the builder's naming functions

	mu     sync.Mutex
	passed map[string]bool // stages that passed, so later checks can depend on them

	lastDiagnosis time.Time

	// operatorInstalled: check 0 applied config/default to a cluster that
	// had neither the Shop CRD nor the operator's Deployment, so the
	// teardown may delete them. An operator that was there before is left.
	operatorInstalled bool

	// Set by the journey, reused by later checks.
	customerEmail, customerPassword, sku string
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ctrlconfig.GetConfig()
	if err != nil {
		t.Fatalf("no cluster to test against (set KUBECONFIG): %v", err)
	}
	rc.QPS, rc.Burst = 50, 100
	rc.Timeout = time.Minute // no call to the API server may hang the suite
	c, err := client.New(rc, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	shop := &shopv1.Shop{ObjectMeta: metav1.ObjectMeta{Name: shopName, Namespace: cfg.namespace}}
	return &suite{cfg: cfg, c: c, shop: shop, passed: map[string]bool{}}
}

// Stages later checks depend on.
const (
	stageInstall = "operator installed"
	stageReady   = "Shop Ready"
	stageProbes  = "probe pods running"
	stageJourney = "journey"
)

func (s *suite) pass(stage string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passed[stage] = true
}

// need skips the test unless every stage passed earlier.
func (s *suite) need(t *testing.T, stages ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range stages {
		if !s.passed[st] {
			t.Skipf("SKIP: needs %q, which did not pass", st)
		}
	}
}

// kubectl runs the kubectl binary with the environment's KUBECONFIG.
func (s *suite) kubectl(ctx context.Context, timeout time.Duration, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cfg.kubectl, args...)
	cmd.Dir = s.cfg.repoRoot
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), err
}

// name is a child's name as the builder computes it.
func (s *suite) name(parts ...string) string { return builder.Name(s.shop, parts...) }

// svcHost is a Service's in-cluster DNS name.
func (s *suite) svcHost(parts ...string) string {
	return s.name(parts...) + "." + s.cfg.namespace + ".svc"
}

// publicURL and internalURL are a service's TLS ports through its Service.
func (s *suite) publicURL(svc shopv1.ServiceName) string {
	return "https://" + s.svcHost(string(svc)) + ":8443"
}

func (s *suite) internalURL(svc shopv1.ServiceName) string {
	return "https://" + s.svcHost(string(svc)) + ":9443"
}

// suiteDeadline is when the checks must stop so that the teardown still runs
// before `go test -timeout` ends the process (zero: no limit). TestE2E sets
// it before the first check.
var suiteDeadline time.Time

// eventually polls cond every interval until it reports done, or fails the
// test after timeout (or at suiteDeadline) with the last message cond gave.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	if !suiteDeadline.IsZero() && suiteDeadline.Before(deadline) {
		deadline = suiteDeadline
	}
	start := time.Now()
	last := ""
	for {
		done, msg := cond()
		if msg != "" {
			last = msg
		}
		if done {
			t.Logf("%s after %s", what, time.Since(start).Round(100*time.Millisecond))
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("FAIL: %s: not within %s; last seen: %s", what, timeout, last)
			return false
		}
		time.Sleep(interval)
	}
}

func (s *suite) getShop(ctx context.Context) (*shopv1.Shop, error) {
	shop := &shopv1.Shop{}
	err := s.c.Get(ctx, client.ObjectKeyFromObject(s.shop), shop)
	return shop, err
}

// shopReady reports whether the Shop is Ready for its current generation.
func (s *suite) shopReady(ctx context.Context) (bool, string) {
	shop, err := s.getShop(ctx)
	if err != nil {
		return false, err.Error()
	}
	c := meta.FindStatusCondition(shop.Status.Conditions, shopv1.ConditionReady)
	if c == nil {
		return false, "no Ready condition yet"
	}
	msg := fmt.Sprintf("Ready=%s (%s: %s), generation %d, observed %d, services %s", c.Status, c.Reason, c.Message,
		shop.Generation, c.ObservedGeneration, shop.Status.ServicesReady)
	return c.Status == metav1.ConditionTrue && c.ObservedGeneration == shop.Generation &&
		shop.Status.ObservedGeneration == shop.Generation, msg
}

// waitShopReady waits for Ready=True at the Shop's current generation and
// dumps the Shop, its pods and events when it does not come.
func (s *suite) waitShopReady(t *testing.T, ctx context.Context, timeout time.Duration) bool {
	t.Helper()
	ok := eventually(t, timeout, 3*time.Second, "Shop Ready=True", func() (bool, string) { return s.shopReady(ctx) })
	if !ok {
		s.diagnose(t, ctx)
	}
	return ok
}

// pods lists the pods of one component of the Shop that are not being deleted.
func (s *suite) pods(ctx context.Context, component string) ([]corev1.Pod, error) {
	var list corev1.PodList
	err := s.c.List(ctx, &list, client.InNamespace(s.cfg.namespace),
		client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(builder.SelectorLabels(s.shop, component))})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Labels[probeRoleLabel] == "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// diagnose logs what a human needs to see why the Shop is not where it
// should be: its conditions, the pods, recent events and the operator's log.
func (s *suite) diagnose(t *testing.T, ctx context.Context) {
	t.Helper()
	ctx = context.WithoutCancel(ctx)
	if shop, err := s.getShop(ctx); err == nil {
		var b strings.Builder
		fmt.Fprintf(&b, "Shop %s/%s generation %d, observed %d, services %s\n", shop.Namespace, shop.Name,
			shop.Generation, shop.Status.ObservedGeneration, shop.Status.ServicesReady)
		for _, c := range shop.Status.Conditions {
			fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
		for svc, st := range shop.Status.Services {
			fmt.Fprintf(&b, "  %s: %d/%d ready\n", svc, st.ReadyReplicas, st.DesiredReplicas)
		}
		t.Log(b.String())
	} else {
		t.Logf("Shop: %v", err)
	}
	s.mu.Lock()
	s.lastDiagnosis = time.Now()
	s.mu.Unlock()
	for _, args := range [][]string{
		{"-n", s.cfg.namespace, "get", "pods,deployments,statefulsets,hpa,pdb,certificates", "-o", "wide"},
		{"-n", s.cfg.namespace, "get", "events", "--sort-by=.lastTimestamp"},
		{"-n", operatorNamespace, "get", "pods", "-o", "wide"},
		{"-n", operatorNamespace, "logs", "-l", "control-plane=controller-manager", "--tail=60", "--prefix"},
	} {
		out, errOut, err := s.kubectl(ctx, 30*time.Second, args...)
		if err != nil {
			t.Logf("$ kubectl %s\n%v", strings.Join(args, " "), err)
			continue
		}
		if args[3] == "events" {
			out = tail(out, 40)
		}
		t.Logf("$ kubectl %s\n%s%s", strings.Join(args, " "), out, errOut)
	}
	// The last words of the Shop's pods that are not Ready, from before
	// their last restart when there was one.
	var pods corev1.PodList
	if err := s.c.List(ctx, &pods, client.InNamespace(s.cfg.namespace), client.MatchingLabels(builder.InstanceSelector(s.shop))); err != nil {
		return
	}
	for _, p := range pods.Items {
		if podReady(&p) || p.Labels[probeRoleLabel] != "" {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			args := []string{"-n", p.Namespace, "logs", p.Name, "-c", cs.Name, "--tail=8"}
			if cs.RestartCount > 0 {
				args = append(args, "--previous")
			}
			out, _, err := s.kubectl(ctx, 30*time.Second, args...)
			t.Logf("$ kubectl %s\n%s%v", strings.Join(args, " "), out, err)
		}
	}
}

// diagnosedRecently: the diagnostics were just logged, no need to repeat them.
func (s *suite) diagnosedRecently() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.lastDiagnosis) < 2*time.Minute
}

func itoa(n int) string { return strconv.Itoa(n) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{lines[0], "..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n") + "\n"
}

// ignoreNotFound is client.IgnoreNotFound for errors.Join and friends.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// waitGone waits until obj no longer exists.
func (s *suite) waitGone(ctx context.Context, obj client.Object, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("still there")
			}
			return fmt.Errorf("%s %s: not gone within %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), timeout, err)
		}
		time.Sleep(2 * time.Second)
	}
}
