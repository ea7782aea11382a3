package integration

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// conflictBackoff bounds the retries of update: about 3 s in all.
var conflictBackoff = wait.Backoff{Steps: 10, Duration: 20 * time.Millisecond, Factor: 1.5}

// update reads obj, applies change and writes it back, again while the API
// server answers Conflict: the operator writes the same objects (the Shop's
// status, its children) at any time, and a write that lost that race says
// nothing about what the test asks. Any other answer, a refusal included,
// is returned.
func update(obj client.Object, change func(), opts ...client.UpdateOption) error {
	return retryOnConflict(obj, change, func(ctx context.Context) error { return k8sClient.Update(ctx, obj, opts...) })
}

// updateStatus is update for the status subresource.
func updateStatus(obj client.Object, change func()) error {
	return retryOnConflict(obj, change, func(ctx context.Context) error { return k8sClient.Status().Update(ctx, obj) })
}

func retryOnConflict(obj client.Object, change func(), write func(context.Context) error) error {
	ctx := context.Background()
	return retry.RetryOnConflict(conflictBackoff, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return write(ctx)
	})
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// boundClaim creates a 10Gi claim bound to a CSI volume of the expandable
// StorageClass "standard", as a dynamic provisioner would leave it.
func boundClaim(t *testing.T, ns, name string, labels map[string]string) *corev1.PersistentVolumeClaim {
	t.Helper()
	ctx := context.Background()
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: "standard"},
		Provisioner:          "csi.example.com",
		AllowVolumeExpansion: ptr.To(true),
	}
	if err := k8sClient.Create(ctx, sc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "csi.example.com"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              "standard",
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: ns + "-" + name}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
		},
	}
	if err := k8sClient.Create(ctx, pv); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("standard"),
			VolumeName:       pv.Name,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if err := k8sClient.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}
	if err := k8sClient.Status().Update(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	return pvc
}

// autoscalingv1Scale writes a Deployment's scale subresource the way the
// HorizontalPodAutoscaler controller does (an update, not an apply).
type autoscalingv1Scale struct{}

func (autoscalingv1Scale) set(ctx context.Context, ns, name string, replicas int32) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	return retry.RetryOnConflict(conflictBackoff, func() error {
		scale := &autoscalingv1.Scale{}
		if err := k8sClient.SubResource("scale").Get(ctx, d, scale); err != nil {
			return err
		}
		scale.Spec.Replicas = replicas
		return k8sClient.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale), client.FieldOwner("horizontal-pod-autoscaler"))
	})
}
