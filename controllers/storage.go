package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shopstack/shopstack/internal/apply"
)

// growVolumes carries out a storage size increase, which a StatefulSet cannot
// take in place (its volume claim templates are immutable): each bound
// PersistentVolumeClaim is expanded, then the StatefulSet is deleted with its
// pods orphaned, and the next pass creates it again with the new template and
// adopts the running pods. No pod and no volume is lost. It reports whether
// the StatefulSet is being replaced, so the caller does not apply it now.
func (r *ShopReconciler) growVolumes(ctx context.Context, st *reconcileState, desired *appsv1.StatefulSet, live client.Object) (bool, error) {
	cur, ok := live.(*appsv1.StatefulSet)
	if !ok || cur == nil {
		return false, nil
	}
	if !cur.DeletionTimestamp.IsZero() {
		return true, nil // being replaced: wait until it is gone
	}
	want := claimSize(desired.Spec.VolumeClaimTemplates)
	have := claimSize(cur.Spec.VolumeClaimTemplates)
	if want == nil || have == nil {
		return false, nil
	}
	// Expand every bound claim smaller than the spec asks for (the API resizes
	// only bound claims; a pending one is expanded once it is bound).
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := r.List(ctx, pvcs, client.InNamespace(cur.Namespace), client.MatchingLabels(cur.Spec.Selector.MatchLabels)); err != nil {
		return false, fmt.Errorf("listing the volumes of StatefulSet %s: %w", cur.Name, err)
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if size.Cmp(*want) >= 0 {
			continue
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			st.waiting = append(st.waiting, "PersistentVolumeClaim "+pvc.Name+" to be bound before it grows")
			continue
		}
		grow := &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: pvc.Name, Namespace: pvc.Namespace},
			Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: *want},
			}},
		}
		u, err := apply.Desired(grow)
		if err != nil {
			return false, err
		}
		u.SetAnnotations(nil)
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(apply.FieldOwner), client.ForceOwnership); err != nil {
			return false, fmt.Errorf("expanding PersistentVolumeClaim %s to %s (does its StorageClass allow volume expansion?): %w", pvc.Name, want.String(), err)
		}
		r.Recorder.Eventf(st.shop, pvc, corev1.EventTypeNormal, "ExpandingVolume", "Resize",
			"expanding PersistentVolumeClaim %s from %s to %s", pvc.Name, size.String(), want.String())
	}
	if want.Cmp(*have) <= 0 {
		return false, nil
	}
	// New pods must get claims of the new size too: the template cannot change
	// in place, so the StatefulSet is replaced around its running pods.
	if err := r.Delete(ctx, cur, client.PropagationPolicy(metav1.DeletePropagationOrphan)); client.IgnoreNotFound(err) != nil {
		return true, fmt.Errorf("replacing StatefulSet %s for its new volume size: %w", cur.Name, err)
	}
	r.Recorder.Eventf(st.shop, cur, corev1.EventTypeNormal, "ReplacingStatefulSet", "Resize",
		"recreating StatefulSet %s around its running pods for %s volumes (was %s)", cur.Name, want.String(), have.String())
	return true, nil
}

func claimSize(claims []corev1.PersistentVolumeClaim) *resource.Quantity {
	for _, c := range claims {
		if c.Name == "data" {
			q := c.Spec.Resources.Requests[corev1.ResourceStorage]
			return &q
		}
	}
	return nil
}
