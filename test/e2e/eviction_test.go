//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shopstack/shopstack/internal/builder"
)

// checkEviction evicts every pod of the Shop through the Eviction API, one
// PodDisruptionBudget at a time and, within one, one pod after the other
// without waiting: while the replacement of an evicted pod is not Ready, the
// next eviction must be refused with 429, and it must succeed once the
// replacement is Ready. A component with a single pod must still be
// evictable: no budget may block a drain for good.
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
	for _, pdb := range pdbs.Items {
		component := pdb.Labels[builder.LabelComponent]
		t.Run(component, func(t *testing.T) { s.evictAll(t, ctx, pdb, component) })
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

func (s *suite) evictAll(t *testing.T, ctx context.Context, pdb policyv1.PodDisruptionBudget, component string) {
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
	refusedWhileReplacing := 0
	for i, pod := range pods {
		start := time.Now()
		refused := 0
		for {
			err := s.c.SubResource("eviction").Create(ctx, &pod, &policyv1.Eviction{
				ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
			})
			if err == nil {
				break
			}
			if !apierrors.IsTooManyRequests(err) {
				t.Fatalf("FAIL: evicting %s: %v", pod.Name, err)
			}
			refused++
			if time.Since(start) > 4*time.Minute {
				t.Fatalf("FAIL: evicting %s refused %d times for %s: the budget blocks for good: %v", pod.Name, refused, time.Since(start).Round(time.Second), err)
			}
			time.Sleep(2 * time.Second)
		}
		if i > 0 && refused > 0 {
			refusedWhileReplacing++
		}
		t.Logf("evicted %s after %d refusals (429) in %s", pod.Name, refused, time.Since(start).Round(100*time.Millisecond))
	}
	// Every pod evicted: the component must come back whole.
	evicted := map[string]bool{}
	for _, p := range pods {
		evicted[string(p.UID)] = true
	}
	if !eventually(t, 4*time.Minute, 2*time.Second, component+" back to "+fmt.Sprint(len(pods))+" Ready pods", func() (bool, string) {
		now, err := s.pods(ctx, component)
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range now {
			if !evicted[string(now[i].UID)] && podReady(&now[i]) {
				ready++
			}
		}
		return ready >= len(pods), fmt.Sprintf("%d new pods Ready", ready)
	}) {
		return
	}
	switch {
	case len(pods) == 1:
		t.Logf("PASS: %s's single pod was evictable (maxUnavailable 1) and was replaced", component)
	case refusedWhileReplacing == 0:
		t.Errorf("FAIL: %s has %d pods and evicting them back to back was never refused: the budget did not hold", component, len(pods))
	default:
		t.Logf("PASS: %s: %d pods evicted one at a time; %d evictions were refused with 429 until the replacement was Ready", component, len(pods), refusedWhileReplacing)
	}
}
