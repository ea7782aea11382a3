package controllers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	shopbuilder "github.com/shopstack/shopstack/internal/builder"
)

// observe reads the workloads and certificates back and fills the status
// counters, noting for the conditions what is still on its way.
func (r *ShopReconciler) observe(ctx context.Context, st *reconcileState, desired []client.Object) error {
	shop := st.shop
	shop.Status.GatewayURL = shopbuilder.GatewayURL(shop)
	shop.Status.Services = map[shopv1.ServiceName]shopv1.ServiceStatus{}
	ready := 0
	for _, svc := range shopv1.AllServices {
		d := &appsv1.Deployment{}
		err := r.Get(ctx, client.ObjectKey{Namespace: shop.Namespace, Name: shopbuilder.Name(shop, string(svc))}, d)
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading Deployment of %s: %w", svc, err)
		}
		desired := shopbuilder.DesiredReplicas(shop, svc)
		if err == nil && d.Spec.Replicas != nil {
			desired = *d.Spec.Replicas
		}
		s := shopv1.ServiceStatus{DesiredReplicas: desired}
		if err == nil {
			s.ReadyReplicas = d.Status.ReadyReplicas
		}
		shop.Status.Services[svc] = s
		if err == nil && deploymentAvailable(d) {
			ready++
		} else {
			st.waiting = append(st.waiting, fmt.Sprintf("%s %d/%d", svc, s.ReadyReplicas, desired))
		}
	}
	shop.Status.ServicesReady = fmt.Sprintf("%d/%d", ready, len(shopv1.AllServices))

	pg, err := r.statefulSet(ctx, shop, shopbuilder.ComponentPostgres)
	if err != nil {
		return err
	}
	instances := shopbuilder.PostgresInstances(shop)
	shop.Status.Postgres.ReadyInstances = 0
	shop.Status.Postgres.Primary = ""
	if pg != nil {
		shop.Status.Postgres.ReadyInstances = pg.Status.ReadyReplicas
	}
	if pg != nil && statefulSetReady(pg) {
		// Until failover moves it, the first instance is the primary.
		shop.Status.Postgres.Primary = shopbuilder.PostgresPodName(shop, 0)
	} else {
		st.waiting = append(st.waiting, fmt.Sprintf("postgres %d/%d", shop.Status.Postgres.ReadyInstances, instances))
	}

	rd, err := r.statefulSet(ctx, shop, shopbuilder.ComponentRedis)
	if err != nil {
		return err
	}
	shop.Status.Redis.ReadyReplicas = 0
	shop.Status.Redis.Master = ""
	if rd != nil {
		shop.Status.Redis.ReadyReplicas = rd.Status.ReadyReplicas
	}
	if rd != nil && statefulSetReady(rd) {
		shop.Status.Redis.Master = shopbuilder.RedisPodName(shop, 0)
	} else {
		st.waiting = append(st.waiting, fmt.Sprintf("redis %d/%d", shop.Status.Redis.ReadyReplicas, shopbuilder.RedisReplicas(shop)))
	}

	certGVK := cmapi.SchemeGroupVersion.WithKind(cmapi.CertificateKind)
	if r.available(certGVK) {
		for _, obj := range desired {
			if obj.GetObjectKind().GroupVersionKind() != certGVK {
				continue
			}
			c := &cmapi.Certificate{}
			err := r.Get(ctx, client.ObjectKeyFromObject(obj), c)
			if client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("reading Certificate %s: %w", obj.GetName(), err)
			}
			if err != nil || !certificateReady(c) {
				st.certsWaiting = append(st.certsWaiting, obj.GetName())
			}
		}
	}
	return nil
}

func (r *ShopReconciler) statefulSet(ctx context.Context, shop *shopv1.Shop, component string) (*appsv1.StatefulSet, error) {
	s := &appsv1.StatefulSet{}
	err := r.Get(ctx, client.ObjectKey{Namespace: shop.Namespace, Name: shopbuilder.Name(shop, component)}, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading StatefulSet %s: %w", component, err)
	}
	return s, nil
}

// deploymentAvailable: the controller has seen the latest spec, every replica
// runs the latest template, and all of them are available.
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation &&
		d.Status.UpdatedReplicas >= want && d.Status.AvailableReplicas >= want
}

func statefulSetReady(s *appsv1.StatefulSet) bool {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	return s.Status.ObservedGeneration >= s.Generation &&
		s.Status.ReadyReplicas >= want && s.Status.UpdatedReplicas >= want
}

func certificateReady(c *cmapi.Certificate) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == cmapi.CertificateConditionReady {
			return cond.Status == cmmeta.ConditionTrue
		}
	}
	return false
}

// setConditions derives Ready, Progressing and Degraded from what the pass saw.
func setConditions(st *reconcileState) {
	shop := st.shop
	gen := shop.Generation
	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&shop.Status.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen,
		})
	}

	var problems []string
	degradedReason := shopv1.ReasonAsExpected
	if len(st.specInvalid) > 0 {
		degradedReason = shopv1.ReasonInvalidSpec
		problems = append(problems, "the spec cannot be carried out, nothing was applied: "+strings.Join(st.specInvalid, "; "))
	}
	if len(st.missingAPIs) > 0 {
		degradedReason = shopv1.ReasonMissingAPIs
		problems = append(problems, missingAPIsMessage(st.missingAPIs))
	}
	if len(st.credentialsLost) > 0 {
		degradedReason = shopv1.ReasonCredentialsLost
		problems = append(problems, fmt.Sprintf(
			"credentials Secret(s) %s are missing but the data they protect still exists on PersistentVolumeClaims; "+
				"restore them from a backup (a new value would lock the services out of their data)", strings.Join(st.credentialsLost, ", ")))
	}
	if len(st.credentialsInvalid) > 0 {
		degradedReason = shopv1.ReasonCredentialsInvalid
		problems = append(problems, "credentials Secret(s) are not usable and were left as they are: "+
			strings.Join(st.credentialsInvalid, "; ")+"; fix or restore them (the operator never overwrites credentials)")
	}
	if len(st.errs) > 0 {
		if degradedReason == shopv1.ReasonAsExpected {
			degradedReason = shopv1.ReasonApplyFailed
		}
		for _, e := range st.errs {
			problems = append(problems, e.Error())
		}
	}
	if len(problems) > 0 {
		set(shopv1.ConditionDegraded, metav1.ConditionTrue, degradedReason, strings.Join(problems, "; "))
	} else {
		set(shopv1.ConditionDegraded, metav1.ConditionFalse, shopv1.ReasonAsExpected, "every child of the Shop was applied")
	}

	ready := len(st.waiting) == 0 && len(st.certsWaiting) == 0 && len(problems) == 0
	switch {
	case ready:
		set(shopv1.ConditionReady, metav1.ConditionTrue, shopv1.ReasonAvailable, "every workload is available and every certificate is issued")
		set(shopv1.ConditionProgressing, metav1.ConditionFalse, shopv1.ReasonReconciled, "the Shop matches its spec")
	default:
		var waits []string
		reason := shopv1.ReasonWaitingForWorkloads
		if len(st.waiting) > 0 {
			waits = append(waits, "waiting for pods to become ready: "+strings.Join(st.waiting, ", "))
		} else if len(st.certsWaiting) > 0 {
			reason = shopv1.ReasonWaitingForCerts
		}
		if len(st.certsWaiting) > 0 {
			waits = append(waits, fmt.Sprintf("waiting for %d Certificate(s) to be issued: %s", len(st.certsWaiting), strings.Join(st.certsWaiting, ", ")))
		}
		if len(waits) == 0 {
			waits = append(waits, "blocked until the Degraded condition is resolved")
		}
		set(shopv1.ConditionReady, metav1.ConditionFalse, shopv1.ReasonNotReady, strings.Join(waits, "; "))
		set(shopv1.ConditionProgressing, metav1.ConditionTrue, reason, strings.Join(waits, "; "))
	}
	if len(st.errs) == 0 {
		shop.Status.ObservedGeneration = gen
	}
}

func missingAPIsMessage(m map[string][]string) string {
	var parts []string
	gvs := make([]string, 0, len(m))
	for gv := range m {
		gvs = append(gvs, gv)
	}
	sort.Strings(gvs)
	for _, gv := range gvs {
		kinds := slices.Clone(m[gv])
		sort.Strings(kinds)
		parts = append(parts, fmt.Sprintf("%s (%s, needed: %s)", gv, projectOf(gv), strings.Join(kinds, ", ")))
	}
	return "APIs not installed in the cluster, their objects were skipped: " + strings.Join(parts, "; ") +
		"; install the CRDs and the Shop completes by itself"
}

func projectOf(gv string) string {
	switch {
	case strings.HasPrefix(gv, "cert-manager.io/"):
		return "cert-manager"
	case strings.HasPrefix(gv, "security.istio.io/"):
		return "Istio, needed by mesh: istio"
	case strings.HasPrefix(gv, "gateway.networking.k8s.io/"):
		return "Gateway API, needed by gateway.hosts"
	}
	return "unknown"
}

func equalStatus(a, b *shopv1.ShopStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// reportPaused says in the conditions that the Shop is not being reconciled.
func (r *ShopReconciler) reportPaused(ctx context.Context, shop *shopv1.Shop) error {
	before := shop.Status.DeepCopy()
	meta.SetStatusCondition(&shop.Status.Conditions, metav1.Condition{
		Type: shopv1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: shopv1.ReasonPaused,
		Message:            "reconciling is paused by the annotation " + shopv1.PausedAnnotation + `: "true"`,
		ObservedGeneration: shop.Generation,
	})
	if equalStatus(before, &shop.Status) {
		return nil
	}
	return r.Status().Update(ctx, shop)
}

// recordTransitions emits an event when the Shop becomes Ready, stops being
// Ready, or becomes Degraded (or recovers): the changes an admin acts on.
func (r *ShopReconciler) recordTransitions(shop *shopv1.Shop, before *shopv1.ShopStatus) {
	for _, c := range shop.Status.Conditions {
		old := meta.FindStatusCondition(before.Conditions, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		wasTrue := old != nil && old.Status == metav1.ConditionTrue
		switch {
		case c.Type == shopv1.ConditionReady && c.Status == metav1.ConditionTrue:
			r.Recorder.Eventf(shop, nil, corev1.EventTypeNormal, c.Reason, "Reconcile", "Ready: %s", c.Message)
		case c.Type == shopv1.ConditionReady && wasTrue:
			r.Recorder.Eventf(shop, nil, corev1.EventTypeWarning, c.Reason, "Reconcile", "no longer Ready: %s", c.Message)
		case c.Type == shopv1.ConditionDegraded && c.Status == metav1.ConditionTrue:
			r.Recorder.Eventf(shop, nil, corev1.EventTypeWarning, c.Reason, "Reconcile", "Degraded: %s", c.Message)
		case c.Type == shopv1.ConditionDegraded && wasTrue:
			r.Recorder.Eventf(shop, nil, corev1.EventTypeNormal, c.Reason, "Reconcile", "no longer Degraded")
		}
	}
}
