// Package apply is the one way the operator writes its children: server-side
// apply with one field owner, skipped when the live object already matches.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the field manager of every write the operator makes.
const FieldOwner = "shopstack-operator"

// HashAnnotation records the hash of the configuration last applied, so a
// field the operator stopped setting is noticed and removed by the next apply.
const HashAnnotation = "shopstack.dev/applied-hash"

// Result says what Apply did.
type Result int

const (
	// Unchanged: the live object already matched; nothing was written.
	Unchanged Result = iota
	// Applied: a server-side apply request was sent.
	Applied
	// Replaced: apply alone could not undo another writer's additions (an
	// extra container, env var or port is theirs, and apply never removes
	// fields it does not own), so the object was replaced by an update.
	Replaced
)

// Desired turns a typed object into the map that is applied: its JSON, with
// nulls, status and server-owned metadata removed, and the hash annotation set.
func Desired(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := toMap(obj)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
			delete(meta, k)
		}
	}
	pruneNulls(m)
	sum, err := hash(m)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[HashAnnotation] = sum
	u.SetAnnotations(ann)
	return u, nil
}

// UpToDate reports whether live already holds every field of desired and was
// last applied from the same configuration. live is the object as read back
// from the API server (any typed or unstructured object), or nil.
func UpToDate(desired *unstructured.Unstructured, live client.Object) (bool, error) {
	if live == nil {
		return false, nil
	}
	if live.GetAnnotations()[HashAnnotation] != desired.GetAnnotations()[HashAnnotation] {
		return false, nil
	}
	lm, err := toMap(live)
	if err != nil {
		return false, err
	}
	return Contains(lm, desired.Object), nil
}

// Apply writes desired by server-side apply, forcing ownership, unless live
// (the cached copy, nil when absent) is already up to date.
func Apply(ctx context.Context, c client.Client, obj client.Object, live client.Object) (Result, error) {
	desired, err := Desired(obj)
	if err != nil {
		return Unchanged, fmt.Errorf("rendering %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	ok, err := UpToDate(desired, live)
	if err != nil {
		return Unchanged, err
	}
	if ok {
		return Unchanged, nil
	}
	want := desired.DeepCopy()
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(desired), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return Unchanged, fmt.Errorf("applying %s %s: %w", want.GetKind(), want.GetName(), err)
	}
	// desired now holds the API server's answer.
	if Contains(desired.Object, want.Object) {
		return Applied, nil
	}
	if err := replace(ctx, c, want, desired); err != nil {
		return Applied, fmt.Errorf("replacing %s %s to undo changes made by another writer: %w", want.GetKind(), want.GetName(), err)
	}
	return Replaced, nil
}

// replace writes want over live with an update, which (unlike apply) drops
// every field want does not set. What the server or other controllers own by
// design is carried over: the resource version, finalizers, and the replica
// count of a workload whose size an autoscaler decides.
func replace(ctx context.Context, c client.Client, want, live *unstructured.Unstructured) error {
	u := want.DeepCopy()
	u.SetResourceVersion(live.GetResourceVersion())
	u.SetFinalizers(live.GetFinalizers())
	if _, set, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", "replicas"); !set {
		if r, ok, _ := unstructured.NestedFieldNoCopy(live.Object, "spec", "replicas"); ok {
			_ = unstructured.SetNestedField(u.Object, r, "spec", "replicas")
		}
	}
	return c.Update(ctx, u, client.FieldOwner(FieldOwner))
}

// CreateOnce creates obj if no object of its name exists and never changes an
// existing one: for Secrets whose values must not be rewritten. It reports
// whether it created the object.
func CreateOnce(ctx context.Context, c client.Client, obj client.Object) (bool, error) {
	err := c.Create(ctx, obj, client.FieldOwner(FieldOwner))
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	return true, nil
}

func toMap(obj any) (map[string]any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.DeepCopy().Object, nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// pruneNulls removes null fields and empty status maps (typed structs such as
// a volume claim template carry a "status: {}" the server owns).
func pruneNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if m, ok := e.(map[string]any); e == nil || (ok && k == "status" && len(m) == 0) {
				delete(t, k)
				continue
			}
			pruneNulls(e)
		}
	case []any:
		for _, e := range t {
			pruneNulls(e)
		}
	}
}

func hash(m map[string]any) (string, error) {
	b, err := json.Marshal(m) // map keys are sorted, so the encoding is canonical
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// Contains reports whether every field of want is in have with the same
// value. Lists must have the same length; their items are compared in order.
// Fields only in have (defaults, other managers' fields) are ignored.
func Contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok || !Contains(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !Contains(h[i], w[i]) {
				return false
			}
		}
		return true
	default:
		if hn, ok := number(have); ok {
			wn, ok := number(want)
			return ok && hn == wn
		}
		return reflect.DeepEqual(have, want)
	}
}

// number reads the numeric types JSON decoding and unstructured objects use.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}
