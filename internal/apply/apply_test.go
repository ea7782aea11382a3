package apply

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

type deploymentOption func(*appsv1.Deployment)

// testDeployment is a small Deployment as a builder would return it: typed,
// with a scratch emptyDir, no status and no server-owned metadata.
func testDeployment(opts ...deploymentOption) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "acme-order", Namespace: "shop", Labels: map[string]string{"app": "order"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "order"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "order"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "order", Image: "ghcr.io/shopstack/shopstack-order:0.1.0"}},
					Volumes:    []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

func withReplicas(n int32) deploymentOption {
	return func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(n) }
}

func withImage(image string) deploymentOption {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

func withAnnotation(k, v string) deploymentOption {
	return func(d *appsv1.Deployment) {
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[k] = v
	}
}

// asLive is what the API server returns after applying desired: the same
// fields plus defaults, server-owned metadata and a status.
func asLive(t *testing.T, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	desired, err := Desired(d)
	if err != nil {
		t.Fatal(err)
	}
	live := d.DeepCopy()
	live.Annotations = desired.GetAnnotations()
	live.ResourceVersion = "4711"
	live.UID = "0b0e1b8e-7f5a-4e0c-9d7a-3f2f8e6d1c00"
	live.Generation = 3
	live.CreationTimestamp = metav1.Now()
	live.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	live.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	live.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	c := &live.Spec.Template.Spec.Containers[0]
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	live.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	live.Spec.Template.Spec.DNSPolicy = corev1.DNSClusterFirst
	live.Spec.Template.Spec.Volumes[0].EmptyDir.Medium = corev1.StorageMediumDefault
	live.Status = appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, ObservedGeneration: 3}
	return live
}

func mustDesired(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	u, err := Desired(obj)
	if err != nil {
		t.Fatalf("Desired: %v", err)
	}
	return u
}

func TestDesiredDropsWhatTheServerOwns(t *testing.T) {
	d := testDeployment()
	d.Status = appsv1.DeploymentStatus{Replicas: 1}
	d.ResourceVersion = "12"
	d.UID = "u-1"
	d.Generation = 2
	u := mustDesired(t, d)

	if _, ok := u.Object["status"]; ok {
		t.Errorf("status is applied: %v", u.Object["status"])
	}
	meta := u.Object["metadata"].(map[string]any)
	for _, k := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
		if _, ok := meta[k]; ok {
			t.Errorf("metadata.%s is applied", k)
		}
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "template", "metadata", "creationTimestamp"); ok {
		t.Error("the pod template's null creationTimestamp is applied")
	}
}

func TestDesiredKeepsEmptyObjects(t *testing.T) {
	u := mustDesired(t, testDeployment())
	vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
	if len(vols) != 1 {
		t.Fatalf("volumes = %v, want one", vols)
	}
	emptyDir, ok := vols[0].(map[string]any)["emptyDir"]
	if !ok {
		t.Fatal("emptyDir {} was dropped: the volume would have no source")
	}
	if diff := cmp.Diff(map[string]any{}, emptyDir); diff != "" {
		t.Errorf("emptyDir (-want +got):\n%s", diff)
	}
}

func TestDesiredHasNoNulls(t *testing.T) {
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case nil:
			t.Errorf("%s is null", path)
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range x {
				walk(path+"[]", e)
			}
		}
	}
	walk("", mustDesired(t, testDeployment()).Object)
}

func TestDesiredKeepsTheObjectsAnnotations(t *testing.T) {
	u := mustDesired(t, testDeployment(withAnnotation("team", "checkout")))
	if got := u.GetAnnotations()["team"]; got != "checkout" {
		t.Errorf("annotation team = %q, want checkout", got)
	}
	if u.GetAnnotations()[HashAnnotation] == "" {
		t.Errorf("no %s annotation", HashAnnotation)
	}
}

func TestDesiredDoesNotChangeItsInput(t *testing.T) {
	d := testDeployment()
	before := d.DeepCopy()
	mustDesired(t, d)
	if diff := cmp.Diff(before, d); diff != "" {
		t.Errorf("Desired changed the object (-before +after):\n%s", diff)
	}
}

func TestDesiredHash(t *testing.T) {
	base := mustDesired(t, testDeployment()).GetAnnotations()[HashAnnotation]
	tests := map[string]struct {
		obj         *appsv1.Deployment
		wantChanged bool
	}{
		"the same object":                  {obj: testDeployment(), wantChanged: false},
		"the same object with a status":    {obj: func() *appsv1.Deployment { d := testDeployment(); d.Status.Replicas = 9; return d }(), wantChanged: false},
		"the same object, server metadata": {obj: func() *appsv1.Deployment { d := testDeployment(); d.ResourceVersion = "99"; return d }(), wantChanged: false},
		"a different replica count":        {obj: testDeployment(withReplicas(3)), wantChanged: true},
		"a different image":                {obj: testDeployment(withImage("ghcr.io/shopstack/shopstack-order:0.2.0")), wantChanged: true},
		"a new annotation":                 {obj: testDeployment(withAnnotation("team", "checkout")), wantChanged: true},
		"replicas left to an autoscaler":   {obj: func() *appsv1.Deployment { d := testDeployment(); d.Spec.Replicas = nil; return d }(), wantChanged: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := mustDesired(t, tc.obj).GetAnnotations()[HashAnnotation]
			if changed := got != base; changed != tc.wantChanged {
				t.Errorf("hash %s vs %s: changed = %v, want %v", got, base, changed, tc.wantChanged)
			}
		})
	}
}

// toUnstructured is how a live object looks when read as unstructured: the
// API server's JSON decoded with integers as int64.
func toUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestUpToDate(t *testing.T) {
	desired := mustDesired(t, testDeployment())
	tests := map[string]struct {
		live client.Object
		want bool
	}{
		"nothing live yet": {
			live: nil,
			want: false,
		},
		"live as applied, with defaults and status": {
			live: asLive(t, testDeployment()),
			want: true,
		},
		"live as applied, read as unstructured": {
			live: toUnstructured(t, asLive(t, testDeployment())),
			want: true,
		},
		"live applied from another configuration": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				l.Annotations[HashAnnotation] = "0000000000000000"
				return l
			}(),
			want: false,
		},
		"live without the hash annotation": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				delete(l.Annotations, HashAnnotation)
				return l
			}(),
			want: false,
		},
		"someone scaled the Deployment by hand": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				l.Spec.Replicas = ptr.To[int32](5)
				return l
			}(),
			want: false,
		},
		"someone changed the image by hand": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				l.Spec.Template.Spec.Containers[0].Image = "evil:latest"
				return l
			}(),
			want: false,
		},
		"someone removed a label": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				delete(l.Labels, "app")
				return l
			}(),
			want: false,
		},
		"someone added a sidecar container": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				l.Spec.Template.Spec.Containers = append(l.Spec.Template.Spec.Containers, corev1.Container{Name: "debug", Image: "busybox"})
				return l
			}(),
			want: false,
		},
		"another manager added an annotation": {
			live: func() client.Object {
				l := asLive(t, testDeployment())
				l.Annotations["deployment.kubernetes.io/revision"] = "4"
				return l
			}(),
			want: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := UpToDate(desired, tc.live)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("UpToDate = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContains(t *testing.T) {
	tests := map[string]struct {
		have, want any
		result     bool
	}{
		"equal maps": {
			have:   map[string]any{"a": "x", "b": float64(1)},
			want:   map[string]any{"a": "x", "b": float64(1)},
			result: true,
		},
		"extra live fields are ignored": {
			have:   map[string]any{"a": "x", "defaulted": true, "nested": map[string]any{"k": "v", "extra": "e"}},
			want:   map[string]any{"a": "x", "nested": map[string]any{"k": "v"}},
			result: true,
		},
		"a missing field": {
			have:   map[string]any{"a": "x"},
			want:   map[string]any{"a": "x", "b": "y"},
			result: false,
		},
		"a missing nested field": {
			have:   map[string]any{"spec": map[string]any{"a": "x"}},
			want:   map[string]any{"spec": map[string]any{"a": "x", "b": "y"}},
			result: false,
		},
		"an empty map matches a defaulted one": {
			have:   map[string]any{"emptyDir": map[string]any{"medium": ""}},
			want:   map[string]any{"emptyDir": map[string]any{}},
			result: true,
		},
		"nested lists, items with extra live fields": {
			have: map[string]any{"containers": []any{
				map[string]any{"name": "a", "ports": []any{map[string]any{"containerPort": int64(80), "protocol": "TCP"}}},
			}},
			want: map[string]any{"containers": []any{
				map[string]any{"name": "a", "ports": []any{map[string]any{"containerPort": float64(80)}}},
			}},
			result: true,
		},
		"a list item differs": {
			have:   map[string]any{"args": []any{"a", "b"}},
			want:   map[string]any{"args": []any{"a", "c"}},
			result: false,
		},
		"a longer live list": {
			have:   map[string]any{"args": []any{"a", "b", "c"}},
			want:   map[string]any{"args": []any{"a", "b"}},
			result: false,
		},
		"a shorter live list": {
			have:   map[string]any{"args": []any{"a"}},
			want:   map[string]any{"args": []any{"a", "b"}},
			result: false,
		},
		"list order matters": {
			have:   []any{"b", "a"},
			want:   []any{"a", "b"},
			result: false,
		},
		"a scalar differs": {
			have:   map[string]any{"replicas": float64(3)},
			want:   map[string]any{"replicas": float64(2)},
			result: false,
		},
		"a map where a scalar is wanted": {
			have:   map[string]any{"x": map[string]any{}},
			want:   map[string]any{"x": "y"},
			result: false,
		},
		"a scalar where a map is wanted": {
			have:   map[string]any{"x": "y"},
			want:   map[string]any{"x": map[string]any{"k": "v"}},
			result: false,
		},
		"a scalar where a list is wanted": {
			have:   map[string]any{"x": "y"},
			want:   map[string]any{"x": []any{"y"}},
			result: false,
		},
		"an int64 from the server equals a JSON number": {
			have:   int64(600),
			want:   float64(600),
			result: true,
		},
		"a large int64 from the server equals a JSON number": {
			have:   int64(1000000),
			want:   float64(1000000),
			result: true,
		},
		"a string is not a bool": {
			have:   "true",
			want:   true,
			result: false,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Contains(tc.have, tc.want); got != tc.result {
				t.Errorf("Contains(%#v, %#v) = %v, want %v", tc.have, tc.want, got, tc.result)
			}
		})
	}
}
