package integration

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// autoscalingv1Scale writes a Deployment's scale subresource the way the
// HorizontalPodAutoscaler controller does (an update, not an apply).
type autoscalingv1Scale struct{}

func (autoscalingv1Scale) set(ctx context.Context, ns, name string, replicas int32) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	scale := &autoscalingv1.Scale{}
	if err := k8sClient.SubResource("scale").Get(ctx, d, scale); err != nil {
		return err
	}
	scale.Spec.Replicas = replicas
	return k8sClient.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale), client.FieldOwner("horizontal-pod-autoscaler"))
}
