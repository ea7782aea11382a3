//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shopstack/shopstack/internal/builder"
)

// checkEviction evicts every pod of the Shop through the Eviction API, one
// PodDisruptionBudget at a time and, within one, one pod after the other
// without waiting: while the replacement of an evicted pod is not Ready, the
// next eviction must be refused with 429, and it must succeed once the
// replacement is Ready. Right before each call the suite reads the budget's
// status and the component's pods: a success must come only when the budget
// allowed a disruption and the Ready pods left are at least desiredHealthy,
// a 429 only when it allowed none (each re-read once for a race). A pod
// deleted meanwhile (an HPA scale-down) is skipped; a component of fixed
// size must have every pod evicted, and one of several pods must see the
// budget refuse. A component with a single pod must still be evictable: no
// budget may block a drain for good.
func (s *suite) checkEviction(t *testing.T, ctx context.Context) {
	s.need(t, stageReady)
	if !s.waitShopReady(t, ctx, 4*time.Minute) {
		return
	}
	var pdbs policyv1.PodDisruptionBudgetList
	if err := s.c.List(ctx, &pdbs, client.InNamespace(s.cfg.namespace), client.MatchingLabels(builder.InstanceSelector(s.shop))); err != nil {
		t.Fatal(err)
	}
	if len(pdbs.Items) != 6 {
		t.Errorf("FAIL: the Shop has %d PodDisruptionBudgets, want 6 (four services, Postgres, Redis)", len(pdbs.Items))
	}
	// The services first, the data tier last (its pods take the longest).
	rank := func(p policyv1.PodDisruptionBudget) int {
		switch p.Labels[builder.LabelComponent] {
		case builder.ComponentPostgres:
			return 1
		case builder.ComponentRedis:
			return 2
		}
		return 0
	}
	slices.SortFunc(pdbs.Items, func(a, b policyv1.PodDisruptionBudget) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return compare(a.Name, b.Name)
	})
	// An autoscaler may delete pods of its Deployment during the check.
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := s.c.List(ctx, &hpas, client.InNamespace(s.cfg.namespace), client.MatchingLabels(builder.InstanceSelector(s.shop))); err != nil {
		t.Fatal(err)
	}
	autoscaled := map[string]bool{}
	for _, h := range hpas.Items {
		autoscaled[h.Labels[builder.LabelComponent]] = true
	}
	for _, pdb := range pdbs.Items {
		component := pdb.Labels[builder.LabelComponent]
		t.Run(component, func(t *testing.T) { s.evictAll(t, ctx, pdb, component, autoscaled[component]) })
	}
	if s.waitShopReady(t, ctx, 5*time.Minute) {
		t.Log("PASS: the Shop is Ready again after every pod was evicted")
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// budgetState is what the eviction API decides on, read right before an
// eviction: the budget's status and the component's pods.
type budgetState struct {
	pdb         policyv1.PodDisruptionBudget
	target      *corev1.Pod // the pod to evict; nil: gone or terminating
	readyOthers int         // Ready pods of the component other than the target
}

func (b budgetState) String() string {
	st := b.pdb.Status
	targetReady := false
	if b.target != nil {
		targetReady = podReady(b.target)
	}
	return fmt.Sprintf("PDB disruptionsAllowed %d, currentHealthy %d, desiredHealthy %d, expectedPods %d (observed generation %d of %d); "+
		"%d other pods Ready, target Ready %v", st.DisruptionsAllowed, st.CurrentHealthy, st.DesiredHealthy, st.ExpectedPods,
		st.ObservedGeneration, b.pdb.Generation, b.readyOthers, targetReady)
}

// allows: the budget lets the target go. A Ready target needs a disruption
// allowed; a target that is not Ready may go while the others keep the
// budget (the default unhealthy-pod eviction policy). Either way, the Ready
// pods left must be at least desiredHealthy (replicas - maxUnavailable).
func (b budgetState) allows() bool {
	if b.target == nil || b.readyOthers < int(b.pdb.Status.DesiredHealthy) {
		return false
	}
	return b.pdb.Status.DisruptionsAllowed >= 1 || !podReady(b.target)
}

func (s *suite) budgetState(ctx context.Context, pdbName, component string, target types.UID) (budgetState, error) {
	var b budgetState
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.cfg.namespace, Name: pdbName}, &b.pdb); err != nil {
		return b, err
	}
	pods, err := s.pods(ctx, component)
	if err != nil {
		return b, err
	}
	for i := range pods {
		switch {
		case pods[i].UID == target:
			b.target = &pods[i]
		case podReady(&pods[i]):
			b.readyOthers++
		}
	}
	return b, nil
}

func (s *suite) evictAll(t *testing.T, ctx context.Context, pdb policyv1.PodDisruptionBudget, component string, autoscaled bool) {
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("FAIL: PDB %s has maxUnavailable %v, want 1", pdb.Name, pdb.Spec.MaxUnavailable)
	}
	// Start from a component whose pods are all Ready and counted.
	var pods []corev1.Pod
	if !eventually(t, 3*time.Minute, 2*time.Second, component+" pods all Ready", func() (bool, string) {
		var err error
		pods, err = s.pods(ctx, component)
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) {
				ready++
			}
		}
		return ready == len(pods) && len(pods) > 0, fmt.Sprintf("%d of %d Ready", ready, len(pods))
	}) {
		return
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return compare(a.Name, b.Name) })
	const (
		blockedFor  = 4 * time.Minute // refusals for longer than this: the budget blocks for good
		maxAttempts = 200             // per pod, 2 s apart
	)
	refusedWhileReplacing, evictedCount, goneCount := 0, 0, 0
	for i, pod := range pods {
		start := time.Now()
		refused := 0
		outcome := ""
		for attempt := 0; outcome == ""; attempt++ {
			if attempt >= maxAttempts || time.Since(start) > blockedFor {
				t.Fatalf("FAIL: evicting %s refused %d times for %s: the budget blocks for good", pod.Name, refused, time.Since(start).Round(time.Second))
			}
			if attempt > 0 {
				time.Sleep(2 * time.Second)
			}
			// What the budget says right before the call.
			pre, err := s.budgetState(ctx, pdb.Name, component, pod.UID)
			if err != nil {
				t.Fatalf("FAIL: reading PDB %s and %s's pods: %v", pdb.Name, component, err)
			}
			if pre.target == nil {
				outcome = "gone" // deleted by someone else (an HPA scale-down): nothing to evict
				break
			}
			// The UID precondition: never evict a same-named successor.
			err = s.c.SubResource("eviction").Create(ctx, &pod, &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
				DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}},
			})
			switch {
			case err == nil:
				if !pre.allows() {
					// Something may have become Ready between the reads and
					// the call: read once more (the target is now
					// terminating, so it is not among the Ready pods).
					post, perr := s.budgetState(ctx, pdb.Name, component, pod.UID)
					if perr != nil {
						t.Fatalf("FAIL: reading PDB %s again: %v", pdb.Name, perr)
					}
					if post.readyOthers < int(post.pdb.Status.DesiredHealthy) || post.readyOthers < int(pre.pdb.Status.DesiredHealthy) {
						t.Fatalf("FAIL: evicting %s succeeded although the budget did not allow it: before the call %s; after it %s", pod.Name, pre, post)
					}
					t.Logf("note: evicting %s succeeded while the state read just before did not allow it (%s); read again, it does: %s", pod.Name, pre, post)
				}
				t.Logf("evicted %s after %d refusals (429) in %s; just before: %s", pod.Name, refused, time.Since(start).Round(100*time.Millisecond), pre)
				outcome = "evicted"
			case apierrors.IsNotFound(err):
				outcome = "gone" // deleted since the list
			case apierrors.IsConflict(err):
				// The UID precondition failed (the pod was replaced), or the
				// budget's status changed under the eviction: try again
				// while the same pod is there.
				post, perr := s.budgetState(ctx, pdb.Name, component, pod.UID)
				if perr != nil {
					t.Fatalf("FAIL: reading PDB %s again: %v", pdb.Name, perr)
				}
				if post.target == nil {
					outcome = "gone"
				} else {
					t.Logf("evicting %s: conflict (%v); trying again", pod.Name, err)
				}
			case apierrors.IsTooManyRequests(err):
				if pre.pdb.Status.DisruptionsAllowed != 0 {
					// The budget said yes; the status may have changed in
					// between: read once more.
					post, perr := s.budgetState(ctx, pdb.Name, component, pod.UID)
					if perr != nil {
						t.Fatalf("FAIL: reading PDB %s again: %v", pdb.Name, perr)
					}
					if post.pdb.Status.DisruptionsAllowed != 0 && post.pdb.Status.ObservedGeneration >= post.pdb.Generation {
						t.Fatalf("FAIL: evicting %s was refused (429) although the budget allowed a disruption: before the call %s; after it %s: %v", pod.Name, pre, post, err)
					}
				}
				refused++
			default:
				t.Fatalf("FAIL: evicting %s: %v", pod.Name, err)
			}
		}
		switch outcome {
		case "gone":
			goneCount++
			t.Logf("%s was already gone (deleted by another controller); not evicted", pod.Name)
			continue
		case "evicted":
			evictedCount++
		}
		if i > 0 && refused > 0 {
			refusedWhileReplacing++
		}
	}
	// Every pod evicted or gone: the component must come back whole, to
	// the pods its budget now expects (an HPA may have scaled it down).
	original := map[types.UID]bool{}
	for _, p := range pods {
		original[p.UID] = true
	}
	if !eventually(t, 4*time.Minute, 2*time.Second, component+" back to the expected number of Ready pods", func() (bool, string) {
		var now policyv1.PodDisruptionBudget
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.cfg.namespace, Name: pdb.Name}, &now); err != nil {
			return false, err.Error()
		}
		pods, err := s.pods(ctx, component)
		if err != nil {
			return false, err.Error()
		}
		ready, old := 0, 0
		for i := range pods {
			switch {
			case original[pods[i].UID]:
				old++
			case podReady(&pods[i]):
				ready++
			}
		}
		want := int(now.Status.ExpectedPods)
		return old == 0 && want >= 1 && ready >= want, fmt.Sprintf("%d new pods Ready of %d expected, %d original pods left", ready, want, old)
	}) {
		return
	}
	switch {
	case len(pods) == 1 && evictedCount == 1:
		t.Logf("PASS: %s's single pod was evictable (maxUnavailable 1) and was replaced", component)
	case !autoscaled && evictedCount != len(pods):
		t.Errorf("FAIL: %s has a fixed size of %d pods, but %d were evicted and %d went on their own: nothing else should delete them",
			component, len(pods), evictedCount, goneCount)
	case evictedCount < 2:
		t.Logf("note: %s: %d pods evicted (each while the budget allowed it), %d gone on their own: too few evictions to see the budget refuse one", component, evictedCount, goneCount)
	case refusedWhileReplacing == 0:
		t.Errorf("FAIL: %s has %d pods and evicting them back to back was never refused: the budget did not hold", component, len(pods))
	default:
		t.Logf("PASS: %s: %d pods evicted one at a time, each while the budget allowed it; %d evictions were refused with 429 until the replacement was Ready",
			component, evictedCount, refusedWhileReplacing)
	}
}
