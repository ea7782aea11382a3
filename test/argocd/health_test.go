// Package argocd tests the Argo CD health check shipped in config/argocd the
// way Argo CD runs it: the real Lua script in gopher-lua, the Shop as the
// global obj, and only the libraries Argo CD opens for health checks.
package argocd

import (
	"flag"
	"os"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm-patch.yaml from health.lua")

const (
	scriptPath = "../../config/argocd/health.lua"
	patchPath  = "../../config/argocd/argocd-cm-patch.yaml"
	// healthKey is where argocd-cm holds the health check of group
	// shopstack.dev, kind Shop.
	healthKey = "resource.customizations.health.shopstack.dev_Shop"
)

// health is what a health check returns, as Argo CD reads it.
type health struct {
	Status  string
	Message string
}

func TestShopHealth(t *testing.T) {
	script := readFile(t, scriptPath)
	tests := map[string]struct {
		shop        *shopv1.Shop
		wantStatus  string
		wantMessage string // a part of the message
	}{
		"ready shop is healthy": {
			shop:        testShop(ready()),
			wantStatus:  "Healthy",
			wantMessage: "every workload is available",
		},
		"degraded shop reports why": {
			shop: testShop(
				withCondition(shopv1.ConditionDegraded, metav1.ConditionTrue, shopv1.ReasonMissingAPIs, "APIs not installed in the cluster: cert-manager.io/v1"),
				withCondition(shopv1.ConditionReady, metav1.ConditionFalse, shopv1.ReasonNotReady, "blocked until the Degraded condition is resolved"),
				withObservedGeneration(3),
			),
			wantStatus:  "Degraded",
			wantMessage: "APIs not installed in the cluster",
		},
		"a failed apply is degraded although observedGeneration stays behind": {
			shop: testShop(
				withObservedGeneration(2),
				withCondition(shopv1.ConditionDegraded, metav1.ConditionTrue, shopv1.ReasonApplyFailed, "applying Deployment acme-order: denied"),
			),
			wantStatus:  "Degraded",
			wantMessage: "applying Deployment acme-order",
		},
		"shop waiting for its pods is progressing": {
			shop: testShop(
				withObservedGeneration(3),
				withCondition(shopv1.ConditionDegraded, metav1.ConditionFalse, shopv1.ReasonAsExpected, "every child of the Shop was applied"),
				withCondition(shopv1.ConditionReady, metav1.ConditionFalse, shopv1.ReasonNotReady, "waiting for pods to become ready: order 1/2"),
				withCondition(shopv1.ConditionProgressing, metav1.ConditionTrue, shopv1.ReasonWaitingForWorkloads, "waiting for pods to become ready: order 1/2"),
			),
			wantStatus:  "Progressing",
			wantMessage: "order 1/2",
		},
		"ready status of an older generation is progressing": {
			shop:        testShop(ready(), editedSpec()),
			wantStatus:  "Progressing",
			wantMessage: "waiting for the operator to reconcile generation 4",
		},
		"degraded condition of an older generation is progressing": {
			shop: testShop(
				withObservedGeneration(3),
				withCondition(shopv1.ConditionDegraded, metav1.ConditionTrue, shopv1.ReasonApplyFailed, "applying Deployment acme-order: denied"),
				editedSpec(),
			),
			wantStatus:  "Progressing",
			wantMessage: "generation 4",
		},
		"paused shop is suspended": {
			shop:        testShop(ready(), withAnnotation(shopv1.PausedAnnotation, "true")),
			wantStatus:  "Suspended",
			wantMessage: "paused",
		},
		"paused shop is suspended even when degraded": {
			shop: testShop(
				withCondition(shopv1.ConditionDegraded, metav1.ConditionTrue, shopv1.ReasonMissingAPIs, "APIs not installed"),
				withAnnotation(shopv1.PausedAnnotation, "true"),
			),
			wantStatus:  "Suspended",
			wantMessage: "paused",
		},
		"paused annotation other than true changes nothing": {
			shop:        testShop(ready(), withAnnotation(shopv1.PausedAnnotation, "false")),
			wantStatus:  "Healthy",
			wantMessage: "every workload is available",
		},
		"new shop without status is progressing": {
			shop:        testShop(),
			wantStatus:  "Progressing",
			wantMessage: "waiting for the operator",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := evalHealth(t, script, toMap(t, tc.shop))
			if got.Status != tc.wantStatus {
				t.Errorf("status = %q (message %q), want %q", got.Status, got.Message, tc.wantStatus)
			}
			if !strings.Contains(got.Message, tc.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", got.Message, tc.wantMessage)
			}
		})
	}
}

// The patch for argocd-cm carries health.lua itself, so the two cannot drift.
func TestConfigMapPatchEmbedsHealthScript(t *testing.T) {
	script := readFile(t, scriptPath)
	want := configMapPatch(script)
	if *update {
		if err := os.WriteFile(patchPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := readFile(t, patchPath)
	if got != want {
		t.Fatalf("%s does not match health.lua; run `go test ./test/argocd -update` and review the diff", patchPath)
	}

	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(got), &cm); err != nil {
		t.Fatalf("parsing %s: %v", patchPath, err)
	}
	if cm.Kind != "ConfigMap" || cm.Name != "argocd-cm" {
		t.Errorf("the patch targets %s %s, want ConfigMap argocd-cm", cm.Kind, cm.Name)
	}
	if cm.Data[healthKey] != script {
		t.Errorf("data[%q] of the patch is not the text of health.lua", healthKey)
	}
}

// configMapPatch renders the argocd-cm patch around the script.
func configMapPatch(script string) string {
	var b strings.Builder
	b.WriteString(`# Adds the Shop health check to Argo CD. Generated from health.lua by
# ` + "`go test ./test/argocd -update`" + `: edit health.lua, then regenerate.
#
#   kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm-patch.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
data:
  ` + healthKey + `: |
`)
	for _, line := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
		if line != "" {
			b.WriteString("    ")
			b.WriteString(line)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// evalHealth runs the health check on obj as Argo CD does.
func evalHealth(t *testing.T, script string, obj map[string]any) health {
	t.Helper()
	// Argo CD opens only these libraries (and a reduced os) for health checks:
	// a script that needs string or math fails there, and fails here.
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			t.Fatalf("opening the Lua library %q: %v", lib.name, err)
		}
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		t.Fatalf("running health.lua: %v", err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", l.Get(-1).Type())
	}
	status, ok := ret.RawGetString("status").(lua.LString)
	if !ok {
		t.Fatalf("health.lua returned status %v, want a string", ret.RawGetString("status"))
	}
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		t.Fatalf("health.lua returned status %q, which Argo CD does not know (it shows Unknown)", status)
	}
	message, ok := ret.RawGetString("message").(lua.LString)
	if !ok {
		t.Fatalf("health.lua returned message %v, want a string", ret.RawGetString("message"))
	}
	return health{Status: string(status), Message: string(message)}
}

// toLua converts an object decoded from JSON into Lua values the way Argo CD
// hands a resource to a health check.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetString(key, toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// toMap gives the Shop the shape the API server serves it in.
func toMap(t *testing.T, shop *shopv1.Shop) map[string]any {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(shop)
	if err != nil {
		t.Fatalf("converting the Shop: %v", err)
	}
	return m
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testShop is a Shop at generation 3 with no status, changed by opts in order.
func testShop(opts ...func(*shopv1.Shop)) *shopv1.Shop {
	shop := &shopv1.Shop{
		TypeMeta:   metav1.TypeMeta{APIVersion: shopv1.GroupVersion.String(), Kind: "Shop"},
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: "shop", Generation: 3},
	}
	for _, opt := range opts {
		opt(shop)
	}
	return shop
}

// ready is the status the operator writes once everything is available.
func ready() func(*shopv1.Shop) {
	return func(shop *shopv1.Shop) {
		withObservedGeneration(shop.Generation)(shop)
		withCondition(shopv1.ConditionDegraded, metav1.ConditionFalse, shopv1.ReasonAsExpected, "every child of the Shop was applied")(shop)
		withCondition(shopv1.ConditionReady, metav1.ConditionTrue, shopv1.ReasonAvailable, "every workload is available and every certificate is issued")(shop)
		withCondition(shopv1.ConditionProgressing, metav1.ConditionFalse, shopv1.ReasonReconciled, "the Shop matches its spec")(shop)
	}
}

// withCondition sets a condition observed at the Shop's current generation.
func withCondition(conditionType string, status metav1.ConditionStatus, reason, message string) func(*shopv1.Shop) {
	return func(shop *shopv1.Shop) {
		shop.Status.Conditions = append(shop.Status.Conditions, metav1.Condition{
			Type: conditionType, Status: status, Reason: reason, Message: message,
			ObservedGeneration: shop.Generation, LastTransitionTime: metav1.Unix(1767225600, 0),
		})
	}
}

func withObservedGeneration(g int64) func(*shopv1.Shop) {
	return func(shop *shopv1.Shop) { shop.Status.ObservedGeneration = g }
}

// editedSpec is a change of spec the operator has not seen yet.
func editedSpec() func(*shopv1.Shop) {
	return func(shop *shopv1.Shop) { shop.Generation++ }
}

func withAnnotation(key, value string) func(*shopv1.Shop) {
	return func(shop *shopv1.Shop) {
		if shop.Annotations == nil {
			shop.Annotations = map[string]string{}
		}
		shop.Annotations[key] = value
	}
}
