//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
)

const probeLoad = "load"

// checkAutoscaling loads the user service from inside the cluster and
// expects its HorizontalPodAutoscaler to scale it up after the load started,
// above the replica count it had before, the Deployment to follow, most
// load requests to be answered, and the operator to leave the replica count
// alone afterwards.
//
// The load is token issuance (POST /v1/auth/token): every request verifies a
// password with argon2id (19 MiB, two passes), CPU work in the user pod
// itself, at a few requests a second, well under the per-client rate limit.
// order's endpoints mostly wait on inventory, payment and Postgres, so load
// on them would measure the whole stack rather than one Deployment's CPU.
func (s *suite) checkAutoscaling(t *testing.T, ctx context.Context) {
	s.need(t, stageReady, stageProbes)
	name := s.name(string(shopv1.ServiceUser))
	key := client.ObjectKey{Namespace: s.cfg.namespace, Name: name}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := s.c.Get(ctx, key, hpa); err != nil {
		t.Fatalf("FAIL: the Shop's HorizontalPodAutoscaler %s: %v", name, err)
	}
	minReplicas := *hpa.Spec.MinReplicas
	if minReplicas != 1 || hpa.Spec.MaxReplicas != 3 {
		t.Errorf("FAIL: HPA %s scales %d..%d, want 1..3 as the Shop asks", name, minReplicas, hpa.Spec.MaxReplicas)
	}
	target := int32(0)
	for _, m := range hpa.Spec.Metrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil {
			target = *m.Resource.Target.AverageUtilization
		}
	}
	if target == 0 {
		t.Fatalf("FAIL: HPA %s has no CPU utilization target: %+v", name, hpa.Spec.Metrics)
	}
	// At rest before the load: the HPA reads the pods' CPU, finds it under
	// the target and wants what runs, so a scale-up after this is the
	// load's doing and not a recommendation left from before.
	if !eventually(t, 3*time.Minute, 5*time.Second, "the HPA at rest (metrics read, CPU under the target, desired = current)", func() (bool, string) {
		if err := s.c.Get(ctx, key, hpa); err != nil {
			return false, err.Error()
		}
		util, known := cpuPercent(hpa)
		msg := fmt.Sprintf("desired %d, current %d, CPU %s of target %d%%, ScalingActive %s", hpa.Status.DesiredReplicas,
			hpa.Status.CurrentReplicas, cpuUtilization(hpa), target, hpaCondition(hpa, autoscalingv2.ScalingActive))
		return known && util < target && hpa.Status.DesiredReplicas == hpa.Status.CurrentReplicas &&
			hpaCondition(hpa, autoscalingv2.ScalingActive) == corev1.ConditionTrue, msg
	}) {
		return
	}
	// The baseline: a scale-up counts only if it goes above what the HPA
	// and the Deployment had before the load, and happens after the load
	// started (an earlier scale-up, from the Shop's start, does not count).
	before := &appsv1.Deployment{}
	if err := s.c.Get(ctx, key, before); err != nil {
		t.Fatalf("FAIL: Deployment %s: %v", name, err)
	}
	baseline := max(hpa.Status.DesiredReplicas, hpa.Status.CurrentReplicas, minReplicas)
	if before.Spec.Replicas != nil {
		baseline = max(baseline, *before.Spec.Replicas)
	}
	t.Logf("before the load: HPA %s desired %d, current %d, CPU %s, last scaled %s; Deployment spec %d, ready %d: baseline %d",
		name, hpa.Status.DesiredReplicas, hpa.Status.CurrentReplicas, cpuUtilization(hpa), scaleTime(hpa),
		ptrOr(before.Spec.Replicas, 1), before.Status.ReadyReplicas, baseline)
	if baseline >= hpa.Spec.MaxReplicas {
		t.Fatalf("FAIL: user already runs %d replicas (the HPA's maximum is %d) before any load: no scale-up can be shown", baseline, hpa.Spec.MaxReplicas)
	}
	if _, _, err := s.kubectl(ctx, 30*time.Second, "get", "--raw", "/apis/metrics.k8s.io/v1beta1"); err != nil {
		t.Fatalf("FAIL: the cluster serves no resource metrics (metrics.k8s.io), so no autoscaler can work: %v", err)
	}

	// A customer of its own, so the load's logins are all successful ones.
	email, password := "e2e-load-"+randomHex(4)+"@example.com", "load generator "+randomHex(8)
	account, _ := json.Marshal(map[string]string{"email": email, "password": password})
	var reg httpResult
	if !s.mustProbe(t, ctx, probeGateway, time.Minute, &reg, "http", "-ca", caFile, "-method", "POST", "-json", string(account),
		"-attempts", "3", "-want-status", "201", s.publicURL(shopv1.ServiceUser)+"/v1/users") {
		return
	}
	if reg.Status != 201 {
		t.Fatalf("FAIL: registering the load's customer: %s", reg)
	}

	load := probeSpec{
		role: probeLoad, namespace: s.cfg.namespace, ca: true,
		labels: map[string]string{builder.GatewayNameLabel: builder.GatewayName(s.shop)},
		args: []string{"load", "-ca", caFile, "-method", "POST",
			"-form", "grant_type=password", "-form", "username=" + email, "-form", "password=" + password,
			"-duration", "300s", "-concurrency", "2", "-rps", "4", "-timeout", "20s", "-progress", "15s",
			s.publicURL(shopv1.ServiceUser) + "/v1/auth/token"},
	}
	if !s.startProbes(t, ctx, []probeSpec{load}) {
		return
	}
	// The load runs from here on. lastScaleTime has a resolution of one
	// second: a scale-up at or after this second counts.
	loadStart := time.Now()
	loadStartSecond := loadStart.Truncate(time.Second)
	defer func() {
		t.Logf("load after %s: %s", time.Since(loadStart).Round(time.Second), s.loadProgress(ctx))
		if err := s.deleteProbes(ctx, probeLoad); err != nil {
			t.Errorf("FAIL: stopping the load: %v", err)
		}
	}()

	// Scale-up: after the load started, the HPA scaled (lastScaleTime) to
	// more than the baseline, and the Deployment has that many ready pods.
	// metrics-server needs about a minute for the first samples of a pod.
	var scaledTo int32
	up := eventually(t, 5*time.Minute, 5*time.Second, "the HPA scaled user up above "+fmt.Sprint(baseline)+" after the load started and the Deployment followed", func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := s.c.Get(ctx, key, hpa); err != nil {
			return false, err.Error()
		}
		if err := s.c.Get(ctx, key, d); err != nil {
			return false, err.Error()
		}
		replicas := ptrOr(d.Spec.Replicas, 1)
		scaledAfterLoad := hpa.Status.LastScaleTime != nil && !hpa.Status.LastScaleTime.Time.Before(loadStartSecond)
		msg := fmt.Sprintf("HPA desired %d (current %d, CPU %s, last scaled %s, load started %s); Deployment spec %d, ready %d; load %s",
			hpa.Status.DesiredReplicas, hpa.Status.CurrentReplicas, cpuUtilization(hpa), scaleTime(hpa), loadStart.Format(time.TimeOnly),
			replicas, d.Status.ReadyReplicas, s.loadProgress(ctx))
		if scaledAfterLoad && hpa.Status.DesiredReplicas > baseline && replicas > baseline && replicas >= hpa.Status.DesiredReplicas &&
			d.Status.ReadyReplicas >= replicas {
			scaledTo = replicas
			return true, msg
		}
		return false, msg
	})
	if !up {
		out, _, err := s.kubectl(ctx, 30*time.Second, "-n", s.cfg.namespace, "describe", "hpa", name)
		t.Logf("$ kubectl describe hpa %s\n%s%v", name, out, err)
		return
	}
	// The HPA says why it scaled: CPU above the target, after the load
	// started.
	if ev, err := s.cpuRescaleEvent(ctx, hpa, loadStartSecond); err != nil {
		t.Errorf("FAIL: %v", err)
	} else {
		t.Logf("the HPA's event at %s: %s", ev.time.Format(time.TimeOnly), ev.message)
	}
	t.Logf("PASS: user scaled from %d to %d ready pods under load (HPA last scaled %s, %s after the load started)",
		baseline, scaledTo, scaleTime(hpa), hpa.Status.LastScaleTime.Time.Sub(loadStartSecond).Round(time.Second))

	// The load was real: most token requests were answered 200 (logins of a
	// customer that exists, well under the rate limit). The load pod prints
	// its counts every 15 s; the scale-up can come before the first line.
	var r loadResult
	var err error
	eventually(t, time.Minute, 3*time.Second, "the load pod reports its counts", func() (bool, string) {
		r, err = s.loadStats(ctx)
		if err != nil {
			return false, err.Error()
		}
		return r.Requests >= 20, fmt.Sprintf("%d requests so far", r.Requests)
	})
	if err != nil {
		t.Errorf("FAIL: reading the load's counts: %v", err)
	} else if ok := r.Statuses["200"]; r.Requests < 20 || ok*10 < r.Requests*9 {
		t.Errorf("FAIL: the load got %d answers 200 of %d requests (answers %v, %d errors %v); want at least 20 requests and 90%% answered 200",
			ok, r.Requests, r.Statuses, r.Errors, r.ErrorSeen)
	} else {
		t.Logf("PASS: the load got %d answers 200 of %d requests in %.0f s", ok, r.Requests, r.ElapsedS)
	}

	// No fight: for longer than the operator's periodic resync (30 s), with
	// two extra reconciles forced by touching the Shop, the replica count
	// never goes back down (the HPA itself waits 5 minutes before scaling
	// down), and the operator's own field manager does not own it.
	t.Run("operator_leaves_replicas_to_the_hpa", func(t *testing.T) {
		var samples []string
		lowest, last := scaledTo, scaledTo
		for i := range 40 {
			if i == 5 || i == 20 {
				if err := s.nudgeShop(ctx); err != nil {
					t.Errorf("FAIL: touching the Shop to force a reconcile: %v", err)
				}
			}
			d := &appsv1.Deployment{}
			if err := s.c.Get(ctx, key, d); err != nil {
				t.Fatal(err)
			}
			if d.Spec.Replicas != nil {
				last = *d.Spec.Replicas
				lowest = min(lowest, last)
			}
			if i%5 == 0 {
				samples = append(samples, fmt.Sprint(last))
			}
			if owners := replicasOwners(d); containsString(owners, "shopstack-operator") {
				t.Errorf("FAIL: the operator's field manager owns spec.replicas of %s (owners %v)", name, owners)
				return
			}
			time.Sleep(time.Second)
		}
		if lowest < scaledTo {
			t.Errorf("FAIL: spec.replicas of %s went from %d down to %d within 40 s of the scale-up (samples %s)", name, scaledTo, lowest, strings.Join(samples, " "))
			return
		}
		d := &appsv1.Deployment{}
		_ = s.c.Get(ctx, key, d)
		t.Logf("PASS: spec.replicas stayed at >= %d for 40 s (samples %s; owned by %v)", scaledTo, strings.Join(samples, " "), replicasOwners(d))
	})
}

// loadStats is the last line (progress or summary) of the load pod.
func (s *suite) loadStats(ctx context.Context) (loadResult, error) {
	var r loadResult
	out, _, err := s.kubectl(ctx, 20*time.Second, "-n", s.cfg.namespace, "logs", probePodName(probeLoad), "--tail=1")
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		return r, fmt.Errorf("the load pod's last line %q: %w", strings.TrimSpace(out), err)
	}
	return r, nil
}

// loadProgress is the last progress line of the load pod, for the log.
func (s *suite) loadProgress(ctx context.Context) string {
	r, err := s.loadStats(ctx)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return fmt.Sprintf("%d requests in %.0f s, answers %v, %d errors %v", r.Requests, r.ElapsedS, r.Statuses, r.Errors, r.ErrorSeen)
}

// scaleTime is the HPA's lastScaleTime, for the log.
func scaleTime(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if h.Status.LastScaleTime == nil {
		return "never"
	}
	return h.Status.LastScaleTime.Format(time.TimeOnly)
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func cpuUtilization(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if util, ok := cpuPercent(h); ok {
		return fmt.Sprintf("%d%%", util)
	}
	return "unknown"
}

// cpuPercent is the pods' average CPU utilization the HPA last read.
func cpuPercent(h *autoscalingv2.HorizontalPodAutoscaler) (int32, bool) {
	for _, m := range h.Status.CurrentMetrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			return *m.Resource.Current.AverageUtilization, true
		}
	}
	return 0, false
}

func hpaCondition(h *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) corev1.ConditionStatus {
	for _, c := range h.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

type hpaEvent struct {
	time    time.Time
	message string
}

// cpuRescaleEvent finds the HPA's SuccessfulRescale event at or after since
// that gives CPU above the target as the reason ("New size: 3; reason: cpu
// resource utilization (percentage of request) above target").
func (s *suite) cpuRescaleEvent(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, since time.Time) (hpaEvent, error) {
	var events corev1.EventList
	if err := s.c.List(ctx, &events, client.InNamespace(hpa.Namespace)); err != nil {
		return hpaEvent{}, fmt.Errorf("listing the events of %s: %w", hpa.Namespace, err)
	}
	var seen []string
	for _, e := range events.Items {
		if e.InvolvedObject.Kind != "HorizontalPodAutoscaler" || e.InvolvedObject.Name != hpa.Name || e.Reason != "SuccessfulRescale" {
			continue
		}
		at := e.LastTimestamp.Time
		if e.Series != nil {
			at = e.Series.LastObservedTime.Time
		}
		if at.IsZero() {
			at = e.EventTime.Time
		}
		seen = append(seen, at.Format(time.TimeOnly)+" "+e.Message)
		if !at.Before(since) && strings.Contains(e.Message, "cpu resource utilization") && strings.Contains(e.Message, "above target") {
			return hpaEvent{time: at, message: e.Message}, nil
		}
	}
	return hpaEvent{}, fmt.Errorf("HPA %s has no SuccessfulRescale event since %s for CPU above its target (its rescale events: %v)",
		hpa.Name, since.Format(time.TimeOnly), seen)
}

// replicasOwners are the field managers that own spec.replicas, as
// manager/operation[/subresource].
func replicasOwners(d *appsv1.Deployment) []string {
	var out []string
	for _, mf := range d.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(mf.FieldsV1.Raw, &fields) != nil {
			continue
		}
		if _, ok := fields.Spec["f:replicas"]; ok {
			out = append(out, mf.Manager+"/"+string(mf.Operation)+subresource(mf.Subresource))
		}
	}
	return out
}

func subresource(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}

func containsString(list []string, prefix string) bool {
	for _, s := range list {
		if s == prefix || strings.HasPrefix(s, prefix+"/") {
			return true
		}
	}
	return false
}

// nudgeShop changes an annotation of the Shop, which makes the operator
// reconcile it.
func (s *suite) nudgeShop(ctx context.Context) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"e2e.shopstack.dev/nudge":%q}}}`, time.Now().Format(time.RFC3339Nano))
	return s.c.Patch(ctx, s.shop.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(patch)))
}
