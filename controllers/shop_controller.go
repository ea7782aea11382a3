// Package controllers holds the Shop reconciler: it loads a Shop, builds the
// desired children with internal/builder, applies them with internal/apply,
// removes children the Shop no longer wants, and reports status.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
	shopbuilder "github.com/shopstack/shopstack/internal/builder"
)

// ShopReconciler turns Shops into their stacks.
type ShopReconciler struct {
	client.Client
	// APIReader reads past the cache, for Secrets that must not be generated twice.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// Inputs carries the operator's own facts (version, namespace) to the builders.
	Inputs shopbuilder.Inputs
	// RequeueAfter is how soon a Shop whose workloads are not yet available is looked at again.
	RequeueAfter time.Duration

	ctrl    controller.Controller
	cache   cache.Cache
	mu      sync.Mutex
	watched map[schema.GroupVersionKind]bool
}

// +kubebuilder:rbac:groups=shopstack.dev,resources=shops,verbs=get;list;watch
// +kubebuilder:rbac:groups=shopstack.dev,resources=shops/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=shopstack.dev,resources=shops/finalizers,verbs=update
// +kubebuilder:rbac:groups=core,resources=services;serviceaccounts;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=persistentvolumeclaims,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=core,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates;issuers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications;requestauthentications;authorizationpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways;httproutes;backendtlspolicies,verbs=get;list;watch;create;update;patch;delete

// Reconcile brings one Shop's children to what its spec asks for.
func (r *ShopReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	shop := &shopv1.Shop{}
	if err := r.Get(ctx, req.NamespacedName, shop); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !shop.DeletionTimestamp.IsZero() {
		// Owner references and the PVC retention policy do the cleanup.
		return ctrl.Result{}, nil
	}
	if shop.Annotations[shopv1.PausedAnnotation] == "true" {
		return ctrl.Result{}, r.reportPaused(ctx, shop)
	}
	r.ensureWatches(ctx)

	st := &reconcileState{shop: shop}
	before := shop.Status.DeepCopy()
	if st.specInvalid = validateSpec(shop); len(st.specInvalid) > 0 {
		setConditions(st)
		return ctrl.Result{}, r.writeStatus(ctx, shop, before)
	}

	in, err := r.ensureCredentials(ctx, st)
	if err != nil {
		st.fail(err)
	}
	if in.CABundle, err = r.caBundle(ctx, shop); err != nil {
		st.fail(err)
	}
	desired := shopbuilder.Build(shop, in)
	r.applyAll(ctx, st, desired)
	// Prune only after a clean pass: a child missing from desired because a
	// read failed (the signing key, say) must not be deleted.
	if len(st.errs) == 0 && len(st.credentialsInvalid) == 0 && len(st.credentialsLost) == 0 {
		if err := r.prune(ctx, st, desired); err != nil {
			st.fail(err)
		}
	}
	if err := r.observe(ctx, st, desired); err != nil {
		st.fail(err)
	}
	setConditions(st)

	if err := r.writeStatus(ctx, shop, before); err != nil {
		return ctrl.Result{}, err
	}
	if len(st.errs) > 0 {
		// Returned, not logged: controller-runtime logs it and backs off.
		return ctrl.Result{}, errors.Join(st.errs...)
	}
	if !meta.IsStatusConditionTrue(shop.Status.Conditions, shopv1.ConditionReady) {
		return ctrl.Result{RequeueAfter: r.requeueAfter()}, nil
	}
	return ctrl.Result{}, nil
}

// writeStatus updates the Shop's status if it changed, and records the
// transitions an admin cares about as events. A conflict is returned as an
// error: the next pass recomputes the status from a fresh Shop.
func (r *ShopReconciler) writeStatus(ctx context.Context, shop *shopv1.Shop, before *shopv1.ShopStatus) error {
	if equalStatus(before, &shop.Status) {
		return nil
	}
	if err := r.Status().Update(ctx, shop); err != nil {
		return fmt.Errorf("updating status of Shop %s: %w", shop.Name, err)
	}
	r.recordTransitions(shop, before)
	return nil
}

func (r *ShopReconciler) requeueAfter() time.Duration {
	if r.RequeueAfter > 0 {
		return r.RequeueAfter
	}
	return 30 * time.Second
}

// reconcileState collects what one pass observed, for the conditions.
type reconcileState struct {
	shop            *shopv1.Shop
	errs            []error
	missingAPIs     map[string][]string // group/version -> kinds skipped
	credentialsLost []string
	// specInvalid: field-named problems the CRD schema could not catch.
	specInvalid []string
	// credentialsInvalid: Secrets that exist but lack what the Shop needs.
	credentialsInvalid []string
	waiting            []string // workloads not yet available, for humans
	certsWaiting       []string
	applied            int
}

func (s *reconcileState) fail(err error) { s.errs = append(s.errs, err) }

func (s *reconcileState) missing(gvk schema.GroupVersionKind) {
	if s.missingAPIs == nil {
		s.missingAPIs = map[string][]string{}
	}
	gv := gvk.GroupVersion().String()
	if !slices.Contains(s.missingAPIs[gv], gvk.Kind) {
		s.missingAPIs[gv] = append(s.missingAPIs[gv], gvk.Kind)
	}
}

// applyAll applies every desired object whose API exists, skipping those the
// live object already matches.
func (r *ShopReconciler) applyAll(ctx context.Context, st *reconcileState, desired []client.Object) {
	for _, obj := range desired {
		gvk := obj.GetObjectKind().GroupVersionKind()
		if !r.available(gvk) {
			st.missing(gvk)
			continue
		}
		live, err := r.live(ctx, obj)
		if err != nil {
			st.fail(fmt.Errorf("reading %s %s: %w", gvk.Kind, obj.GetName(), err))
			continue
		}
		if sts, ok := obj.(*appsv1.StatefulSet); ok {
			replacing, err := r.growVolumes(ctx, st, sts, live)
			if err != nil {
				st.fail(err)
				continue
			}
			if replacing {
				st.waiting = append(st.waiting, "StatefulSet "+sts.Name+" being recreated with larger volumes")
				continue
			}
		}
		if d, ok := obj.(*appsv1.Deployment); ok && d.Spec.Replicas == nil {
			if live == nil {
				// A new autoscaled Deployment starts at the autoscaler's
				// minimum rather than the API's default of 1; the next pass
				// hands the field over to the autoscaler.
				d.Spec.Replicas = ptr.To(shopbuilder.DesiredReplicas(st.shop, shopv1.ServiceName(d.Labels[shopbuilder.LabelComponent])))
			} else if err := r.handOverReplicas(ctx, d, live); err != nil {
				st.fail(err)
				continue
			}
		}
		res, err := apply.Apply(ctx, r.Client, obj, live)
		if err != nil {
			st.fail(err)
			continue
		}
		switch res {
		case apply.Applied:
			st.applied++
		case apply.Replaced:
			st.applied++
			r.Recorder.Eventf(st.shop, obj, corev1.EventTypeWarning, "RepairedDrift", "Replace",
				"%s %s had changes from another writer that apply cannot undo (extra containers, env vars, ports...); replaced it with the Shop's version",
				obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
		}
	}
}

// live reads the cached copy of obj, or nil when it does not exist.
func (r *ShopReconciler) live(ctx context.Context, obj client.Object) (client.Object, error) {
	cur, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", obj)
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return cur, nil
}

// handOverReplicas keeps a Deployment's size when autoscaling is switched on.
// The operator stops setting spec.replicas; if it alone owned the field, the
// API server would reset it to 1. So the current value is first applied by a
// second field manager, which keeps it until the autoscaler takes it over.
func (r *ShopReconciler) handOverReplicas(ctx context.Context, d *appsv1.Deployment, live client.Object) error {
	cur, ok := live.(*appsv1.Deployment)
	if !ok || cur == nil || cur.Spec.Replicas == nil || !ownsReplicas(cur, apply.FieldOwner) {
		return nil
	}
	handover := &appsv1.Deployment{
		TypeMeta:   d.TypeMeta,
		ObjectMeta: ctrl.ObjectMeta{Name: d.Name, Namespace: d.Namespace},
		Spec:       appsv1.DeploymentSpec{Replicas: cur.Spec.Replicas},
	}
	u, err := apply.Desired(handover)
	if err != nil {
		return err
	}
	// The handover carries only replicas: selector and template stay the main owner's.
	unstructuredDelete(u.Object, "spec", "selector")
	unstructuredDelete(u.Object, "spec", "template")
	unstructuredDelete(u.Object, "spec", "strategy")
	u.SetAnnotations(nil)
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(ReplicasHandoverOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("handing replicas of Deployment %s to the autoscaler: %w", d.Name, err)
	}
	return nil
}

// ReplicasHandoverOwner holds a Deployment's replica count between the
// operator letting go of it and the autoscaler taking it.
const ReplicasHandoverOwner = "shopstack-replicas-handover"

func unstructuredDelete(m map[string]any, path ...string) {
	for i, p := range path {
		if i == len(path)-1 {
			delete(m, p)
			return
		}
		next, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
}

func ownsReplicas(d *appsv1.Deployment, manager string) bool {
	for _, mf := range d.ManagedFields {
		if mf.Manager == manager && mf.Operation == "Apply" && mf.FieldsV1 != nil &&
			strings.Contains(string(mf.FieldsV1.Raw), `"f:replicas"`) {
			return true
		}
	}
	return false
}

// prune deletes children of this Shop that the spec no longer asks for, such
// as the Istio policies after switching to mesh none or an HPA after turning
// autoscaling off.
func (r *ShopReconciler) prune(ctx context.Context, st *reconcileState, desired []client.Object) error {
	want := map[string]bool{}
	for _, o := range desired {
		want[objectID(o.GetObjectKind().GroupVersionKind(), o.GetName())] = true
	}
	var errs []error
	for _, gvk := range shopbuilder.ManagedKinds {
		if !r.available(gvk) {
			continue
		}
		list, err := r.newList(gvk)
		if err != nil {
			return err
		}
		if err := r.List(ctx, list, client.InNamespace(st.shop.Namespace),
			client.MatchingLabels{shopbuilder.LabelInstance: st.shop.Name, shopbuilder.LabelManagedBy: shopbuilder.ManagedByValue}); err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", gvk.Kind, err))
			continue
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok || want[objectID(gvk, obj.GetName())] || !ownedBy(obj, st.shop) {
				continue
			}
			if err := r.Delete(ctx, obj, client.PropagationPolicy("Background")); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting %s %s: %w", gvk.Kind, obj.GetName(), err))
				continue
			}
			r.Recorder.Eventf(st.shop, obj, corev1.EventTypeNormal, "Deleted", "Prune", "deleted %s %s, no longer part of the Shop", gvk.Kind, obj.GetName())
		}
	}
	return errors.Join(errs...)
}

func (r *ShopReconciler) newList(gvk schema.GroupVersionKind) (client.ObjectList, error) {
	o, err := r.Scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err != nil {
		return nil, fmt.Errorf("no list type for %s: %w", gvk, err)
	}
	list, ok := o.(client.ObjectList)
	if !ok {
		return nil, fmt.Errorf("%T is not a list", o)
	}
	return list, nil
}

func objectID(gvk schema.GroupVersionKind, name string) string {
	return gvk.GroupKind().String() + "/" + name
}

func ownedBy(obj client.Object, shop *shopv1.Shop) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == shop.UID && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// available reports whether the API server serves gvk; the REST mapper
// rediscovers a group it did not know, so CRDs installed later are found.
func (r *ShopReconciler) available(gvk schema.GroupVersionKind) bool {
	_, err := r.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}

// ensureWatches starts watching each managed kind once its API exists, so a
// missing CRD does not stop the manager and one installed later is picked up.
func (r *ShopReconciler) ensureWatches(ctx context.Context) {
	if r.ctrl == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.watched) == len(shopbuilder.ManagedKinds) {
		return // everything is watched: nothing to look up
	}
	for _, gvk := range shopbuilder.ManagedKinds {
		if r.watched[gvk] || !r.available(gvk) {
			continue
		}
		obj, err := r.Scheme.New(gvk)
		if err != nil {
			continue
		}
		cobj, ok := obj.(client.Object)
		if !ok {
			continue
		}
		src := source.Kind(r.cache, cobj, handler.EnqueueRequestForOwner(r.Scheme, r.RESTMapper(), &shopv1.Shop{}, handler.OnlyControllerOwner()),
			ignoreCreates)
		if err := r.ctrl.Watch(src); err != nil {
			log.FromContext(ctx).Error(err, "watching", "kind", gvk.Kind)
			continue
		}
		r.watched[gvk] = true
	}
}

// ignoreCreates drops create events of children: the operator made them
// itself, and at start every Shop is reconciled through its own event anyway.
// Updates (drift, status) and deletions still wake the owning Shop.
var ignoreCreates = predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }}

// SetupWithManager registers the reconciler. Children of kinds whose CRDs are
// installed are watched from the start; others as soon as they appear.
func (r *ShopReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrent int) error {
	r.watched = map[schema.GroupVersionKind]bool{}
	r.cache = mgr.GetCache()
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&shopv1.Shop{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Credentials Secrets carry no owner reference under deletionPolicy
		// Retain, so they map to their Shop by label.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(shopFromLabel)).
		Named("shop").
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Build(r)
	if err != nil {
		return err
	}
	r.ctrl = c
	r.ensureWatches(context.Background())
	return nil
}

// shopFromLabel maps a child to its Shop by the instance label.
func shopFromLabel(_ context.Context, obj client.Object) []ctrl.Request {
	name := obj.GetLabels()[shopbuilder.LabelInstance]
	if name == "" {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}}}
}
