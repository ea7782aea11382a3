//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
)

// checkSelfHealing deletes a pod and children of the Shop and expects them
// back, then rolls the services to the next version while a customer keeps
// ordering, and expects no order to fail.
func (s *suite) checkSelfHealing(t *testing.T, ctx context.Context) {
	s.need(t, stageReady, stageProbes)

	t.Run("deleted_pod_replaced", func(t *testing.T) {
		// payment runs one pod: nothing else would bring it back.
		pods, err := s.pods(ctx, string(shopv1.ServicePayment))
		if err != nil || len(pods) == 0 {
			t.Fatalf("FAIL: payment's pods: %v (%d)", err, len(pods))
		}
		old := pods[0]
		if err := s.c.Delete(ctx, &old); err != nil {
			t.Fatalf("FAIL: deleting pod %s: %v", old.Name, err)
		}
		if eventually(t, 3*time.Minute, 2*time.Second, "a new payment pod is Ready", func() (bool, string) {
			pods, err := s.pods(ctx, string(shopv1.ServicePayment))
			if err != nil {
				return false, err.Error()
			}
			for _, p := range pods {
				if p.UID != old.UID && podReady(&p) {
					return true, "pod " + p.Name
				}
			}
			return false, fmt.Sprintf("%d pods, none new and Ready", len(pods))
		}) {
			t.Logf("PASS: deleted pod %s was replaced by a new Ready pod", old.Name)
		}
	})

	t.Run("deleted_children_recreated", func(t *testing.T) {
		ns := s.cfg.namespace
		children := []struct {
			obj  client.Object
			same func(before, after client.Object) bool
		}{
			{&networkingv1.NetworkPolicy{}, func(b, a client.Object) bool {
				return reflect.DeepEqual(b.(*networkingv1.NetworkPolicy).Spec, a.(*networkingv1.NetworkPolicy).Spec)
			}},
			{&corev1.ConfigMap{}, func(b, a client.Object) bool {
				return reflect.DeepEqual(b.(*corev1.ConfigMap).Data, a.(*corev1.ConfigMap).Data)
			}},
			{&corev1.Service{}, func(b, a client.Object) bool {
				bs, as := b.(*corev1.Service).Spec, a.(*corev1.Service).Spec
				return reflect.DeepEqual(bs.Selector, as.Selector) && reflect.DeepEqual(bs.Ports, as.Ports)
			}},
		}
		names := []string{s.name(string(shopv1.ServicePayment)), builder.JWKSConfigMapName(s.shop), s.name(string(shopv1.ServiceUser))}
		for i, ch := range children {
			kind := strings.TrimPrefix(fmt.Sprintf("%T", ch.obj), "*v1.")
			t.Run(kind, func(t *testing.T) {
				key := client.ObjectKey{Namespace: ns, Name: names[i]}
				before := ch.obj.DeepCopyObject().(client.Object)
				if err := s.c.Get(ctx, key, before); err != nil {
					t.Fatalf("FAIL: %s %s: %v", kind, key.Name, err)
				}
				if err := s.c.Delete(ctx, before.DeepCopyObject().(client.Object)); err != nil {
					t.Fatalf("FAIL: deleting %s %s: %v", kind, key.Name, err)
				}
				after := ch.obj.DeepCopyObject().(client.Object)
				if !eventually(t, 2*time.Minute, time.Second, kind+" "+key.Name+" recreated", func() (bool, string) {
					if err := s.c.Get(ctx, key, after); err != nil {
						return false, err.Error()
					}
					return after.GetUID() != before.GetUID() && after.GetDeletionTimestamp() == nil, "the old object is still there"
				}) {
					return
				}
				if !ch.same(before, after) {
					t.Errorf("FAIL: %s %s came back different:\nbefore %+v\nafter  %+v", kind, key.Name, before, after)
					return
				}
				t.Logf("PASS: deleted %s %s came back as before (new uid %s)", kind, key.Name, after.GetUID())
			})
		}
	})

	t.Run("rolling_update_keeps_serving", func(t *testing.T) { s.checkRollout(t, ctx) })
}

// orderTotals add up the probe's orders runs.
type orderTotals struct {
	mu         sync.Mutex
	runs       int
	placed     int
	confirmed  int
	statuses   map[string]int
	failures   []string
	execErrors []string
	// afterRollout: a whole run (login and ordersPerRun orders, read back)
	// started after the rollout was over.
	afterRollout                bool
	afterPlaced, afterConfirmed int
}

// ordersPerRun is the size of one run of orders during the rollout.
const ordersPerRun = 10

func (o *orderTotals) add(r ordersResult, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs++
	if err != nil {
		o.execErrors = append(o.execErrors, err.Error())
		return
	}
	if r.Token.Status != 200 {
		o.failures = append(o.failures, "login: "+r.Token.String())
	}
	o.placed += r.Placed
	o.confirmed += r.Confirmed
	for k, v := range r.Statuses {
		o.statuses[k] += v
	}
	for _, f := range r.Failures {
		o.failures = append(o.failures, f.String())
	}
}

func (s *suite) ordersRun(ctx context.Context, count int) (ordersResult, error) {
	var r ordersResult
	err := s.probe(ctx, probeGateway, 2*time.Minute, &r, "orders", "-ca", caFile,
		"-user", s.publicURL(shopv1.ServiceUser), "-order", s.publicURL(shopv1.ServiceOrder),
		"-email", s.customerEmail, "-password", s.customerPassword, "-sku", s.sku, "-qty", "1",
		"-count", itoa(count), "-interval", "200ms", "-deadline", "60s", "-key-prefix", "e2e-rollout-")
	return r, err
}

func (s *suite) available(ctx context.Context) (int64, error) {
	var res httpResult
	if err := s.probe(ctx, probeGateway, time.Minute, &res, "http", "-ca", caFile, "-attempts", "3", "-want-status", "200",
		s.publicURL(shopv1.ServiceInventory)+"/v1/products/"+url.PathEscape(s.sku)); err != nil {
		return 0, err
	}
	var p productJSON
	if res.Status != 200 || json.Unmarshal([]byte(res.Body), &p) != nil {
		return 0, fmt.Errorf("reading product %s: %s", s.sku, res)
	}
	return p.Available, nil
}

// checkRollout moves spec.version to the next version while orders keep
// coming, one after the other, from the gateway's probe pod (bounded runs of
// ten orders, until the rollout is over and one whole run that starts after
// it). Every order must be confirmed, the stock must go down by exactly the confirmed orders, and
// every service must end with all its pods on the new image.
func (s *suite) checkRollout(t *testing.T, ctx context.Context) {
	s.need(t, stageJourney)
	if !s.waitShopReady(t, ctx, 4*time.Minute) {
		return
	}
	// The deletions above may have left a breaker open for a few seconds:
	// start from a Shop that serves.
	if !eventually(t, 90*time.Second, 3*time.Second, "orders are confirmed before the rollout", func() (bool, string) {
		r, err := s.ordersRun(ctx, 2)
		if err != nil {
			return false, err.Error()
		}
		return r.Confirmed == 2, fmt.Sprintf("%d of %d confirmed, %v", r.Confirmed, r.Placed, r.Failures)
	}) {
		return
	}
	stockBefore, err := s.available(ctx)
	if err != nil {
		t.Fatalf("FAIL: %v", err)
	}

	// The orders loop is bounded by count and by time: the rollout's
	// deadline, plus two runs (one under way when the rollout ends, one
	// that starts after it), each bounded by its exec timeout.
	const (
		rolloutTimeout = 8 * time.Minute
		runTimeout     = 2 * time.Minute // ordersRun's exec timeout
		maxRuns        = 1000            // a run of 10 orders takes 3 s at least
	)
	totals := &orderTotals{statuses: map[string]int{}}
	stop := make(chan time.Time, 1) // when the rollout was over
	done := make(chan struct{})
	loopDeadline := time.Now().Add(rolloutTimeout + 2*runTimeout + 30*time.Second)
	go func() {
		defer close(done)
		var rolloutEnd time.Time
		for i := 0; i < maxRuns && time.Now().Before(loopDeadline) && ctx.Err() == nil; i++ {
			if rolloutEnd.IsZero() {
				select {
				case rolloutEnd = <-stop:
				default:
				}
			}
			runStart := time.Now()
			r, err := s.ordersRun(ctx, ordersPerRun)
			totals.add(r, err)
			if !rolloutEnd.IsZero() && runStart.After(rolloutEnd) {
				// This run started after the rollout was over.
				totals.mu.Lock()
				totals.afterRollout = err == nil && r.Token.Status == 200 && r.Placed == ordersPerRun
				totals.afterPlaced, totals.afterConfirmed = r.Placed, r.Confirmed
				totals.mu.Unlock()
				return
			}
			if err != nil {
				time.Sleep(time.Second) // an exec that failed fast must not spin the loop
			}
		}
	}()

	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"version":%q}}`, s.cfg.nextVersion)
	if err := s.c.Patch(ctx, s.shop.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		stop <- time.Now()
		<-done
		t.Fatalf("FAIL: setting spec.version to %s: %v", s.cfg.nextVersion, err)
	}
	rolled := eventually(t, rolloutTimeout, 3*time.Second, "every service rolled out to "+s.cfg.nextVersion, func() (bool, string) {
		for _, svc := range shopv1.AllServices {
			if ok, msg := s.rolledOut(ctx, svc); !ok {
				return false, msg
			}
		}
		return s.shopReady(ctx)
	})
	rolloutEnd := time.Now()
	rolloutTime := rolloutEnd.Sub(start)
	stop <- rolloutEnd // one whole run that starts after this, then stop
	<-done

	totals.mu.Lock()
	defer totals.mu.Unlock()
	t.Logf("orders from the patch to one run after the rollout (%s): %d runs, %d placed, %d confirmed, answers %v",
		rolloutTime.Round(time.Second), totals.runs, totals.placed, totals.confirmed, totals.statuses)
	if !rolled {
		s.diagnose(t, ctx)
	}
	if !totals.afterRollout {
		t.Errorf("FAIL: no whole run of %d orders started after the rollout was over (the loop ended after %d runs at its bound of %d runs "+
			"or %s, or that run failed: %d placed, %d confirmed): the orders do not cover the rollout",
			ordersPerRun, totals.runs, maxRuns, loopDeadline.Sub(start).Round(time.Second), totals.afterPlaced, totals.afterConfirmed)
	}
	if len(totals.execErrors) > 0 {
		t.Errorf("FAIL: %d runs of orders could not be read (their orders are unaccounted for): %v", len(totals.execErrors), totals.execErrors)
	}
	if totals.placed != totals.confirmed {
		t.Errorf("FAIL: %d orders placed during the rollout, %d confirmed: %d failed", totals.placed, totals.confirmed, totals.placed-totals.confirmed)
	}
	if len(totals.failures) > 0 {
		t.Errorf("FAIL: %d failures during the rollout:\n  %s", len(totals.failures), strings.Join(totals.failures, "\n  "))
	}
	if totals.placed < 20 {
		t.Errorf("FAIL: only %d orders were placed during the rollout; too few to tell", totals.placed)
	}
	stockAfter, err := s.available(ctx)
	if err != nil {
		t.Errorf("FAIL: %v", err)
	} else if stockAfter != stockBefore-int64(totals.confirmed) {
		t.Errorf("FAIL: stock went from %d to %d with %d orders of one confirmed; want %d", stockBefore, stockAfter, totals.confirmed, stockBefore-int64(totals.confirmed))
	} else {
		t.Logf("stock %d -> %d: down by exactly the %d confirmed orders", stockBefore, stockAfter, totals.confirmed)
	}
	if rolled && !t.Failed() {
		t.Logf("PASS: all four services on %s in %s; %d orders placed from the patch until a whole run after the rollout, %d confirmed, none failed",
			s.cfg.nextVersion, rolloutTime.Round(time.Second), totals.placed, totals.confirmed)
	}
}

// rolledOut reports whether one service's Deployment and every one of its
// pods run the next version's image and are ready.
func (s *suite) rolledOut(ctx context.Context, svc shopv1.ServiceName) (bool, string) {
	d := &appsv1.Deployment{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.cfg.namespace, Name: s.name(string(svc))}, d); err != nil {
		return false, err.Error()
	}
	image := d.Spec.Template.Spec.Containers[0].Image
	if !strings.HasSuffix(image, ":"+s.cfg.nextVersion) {
		return false, fmt.Sprintf("%s: Deployment image %s", svc, image)
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if d.Status.ObservedGeneration != d.Generation || st.UpdatedReplicas != want || st.Replicas != want ||
		st.ReadyReplicas != want || st.AvailableReplicas != want {
		return false, fmt.Sprintf("%s: %d wanted, %d updated, %d total, %d ready, %d available", svc, want,
			st.UpdatedReplicas, st.Replicas, st.ReadyReplicas, st.AvailableReplicas)
	}
	var pods corev1.PodList
	if err := s.c.List(ctx, &pods, client.InNamespace(s.cfg.namespace), client.MatchingLabels(builder.SelectorLabels(s.shop, string(svc)))); err != nil {
		return false, err.Error()
	}
	for _, p := range pods.Items {
		if p.Labels[probeRoleLabel] != "" {
			continue
		}
		if img := p.Spec.Containers[0].Image; img != image {
			return false, fmt.Sprintf("%s: pod %s still runs %s", svc, p.Name, img)
		}
	}
	return true, ""
}
