// Command demo starts a local control plane (real kube-apiserver and etcd),
// installs the CRDs, runs the operator, applies a sample Shop and prints what
// it became: a tree of its children with their key facts, and its conditions.
//
//	go run ./hack/demo [-f shop.yaml] [-keep]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"go.uber.org/zap/zapcore"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
	"github.com/shopstack/shopstack/internal/localcp"
	"github.com/shopstack/shopstack/internal/operator"
)

func main() {
	file := flag.String("f", "config/samples/shopstack_v1alpha1_shop.yaml", "the Shop to apply")
	keep := flag.Bool("keep", false, "keep the control plane and operator running after printing, until Ctrl-C")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up when the Shop has not become its children by then")
	flag.Parse()
	if err := run(*file, *keep, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(file string, keep bool, timeout time.Duration) error {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	sample := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &sample.Object); err != nil {
		return fmt.Errorf("%s is not YAML: %w", file, err)
	}
	if sample.GetNamespace() == "" {
		sample.SetNamespace("default")
	}

	start := time.Now()
	step("starting the local control plane (kube-apiserver and etcd) with the Shop, cert-manager, Gateway API and Istio CRDs")
	env, cfg, err := localcp.Start(localcp.Options{})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the control plane")
		_ = env.Stop()
	}()
	fmt.Printf("    up in %.1fs at %s\n", time.Since(start).Seconds(), cfg.Host)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	c, err := client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return err
	}
	step("applying %s (Shop %s/%s)", file, sample.GetNamespace(), sample.GetName())
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sample.GetNamespace()}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(sample), client.FieldOwner("shopstack-demo")); err != nil {
		return refusal(err)
	}

	step("starting the operator")
	mgr, err := operator.New(cfg, operator.Options{
		Metrics: metricsserver.Options{BindAddress: "0"}, ProbeAddr: "0",
		RequeueAfter: 2 * time.Second, Version: builder.DefaultVersion, Namespace: builder.DefaultOperatorNS,
	})
	if err != nil {
		return err
	}
	mgrDone := make(chan error, 1)
	mgrCtx, stopMgr := context.WithCancel(ctx)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	defer func() { stopMgr(); <-mgrDone }()

	shop := &shopv1.Shop{}
	key := client.ObjectKey{Namespace: sample.GetNamespace(), Name: sample.GetName()}
	step("waiting for the operator to create every child")
	deadline := time.Now().Add(timeout)
	var live []*unstructured.Unstructured
	last := ""
	for {
		if err := c.Get(ctx, key, shop); err != nil {
			return err
		}
		var want []client.Object
		want = append(want, credentialSecrets(shop)...)
		want = append(want, builder.Build(shop, builder.Inputs{OperatorVersion: builder.DefaultVersion, JWKS: "x"})...)
		live = live[:0]
		for _, w := range want {
			gvk := w.GetObjectKind().GroupVersionKind()
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := c.Get(ctx, client.ObjectKeyFromObject(w), u); err == nil {
				live = append(live, u)
			}
		}
		statusDone := shop.Status.ObservedGeneration == shop.Generation && len(shop.Status.Conditions) > 0
		progress := fmt.Sprintf("    %d/%d children exist, status observed: %v", len(live), len(want), statusDone)
		if progress != last {
			fmt.Println(progress)
			last = progress
		}
		if len(live) == len(want) && statusDone {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Shop did not become its children within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-mgrDone:
			return fmt.Errorf("the operator stopped: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	fmt.Printf("    converged in %.1fs\n\n", time.Since(start).Seconds())

	nodes := &corev1.NodeList{}
	if err := c.List(ctx, nodes); err != nil {
		return err
	}
	printTree(os.Stdout, shop, live)
	printConditions(os.Stdout, shop, len(nodes.Items))

	if !keep {
		return nil
	}
	path, err := writeKubeconfig(cfg)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(path)) // it holds admin credentials
	kubectl := "kubectl"
	if root, err := localcp.RepoRoot(); err == nil {
		if dir, err := localcp.Assets(root); err == nil {
			kubectl = filepath.Join(dir, "kubectl") // the client built with the control plane, same version
		}
	}
	step("the control plane and the operator keep running; press Ctrl-C to stop (make then reports the interrupt)")
	fmt.Printf("    %s --kubeconfig %s get shops,all -A\n", kubectl, path)
	select {
	case <-ctx.Done():
	case err := <-mgrDone:
		return fmt.Errorf("the operator stopped: %v", err)
	}
	return nil
}

// refusal turns the API server's rejection into one line per invalid field.
func refusal(err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	var b strings.Builder
	b.WriteString("the API server refused the Shop: " + string(st.Reason))
	if st.Details != nil && len(st.Details.Causes) > 0 {
		for _, c := range st.Details.Causes {
			if c.Field == "" || c.Field == "<nil>" {
				fmt.Fprintf(&b, "\n    %s", c.Message) // a rule on the whole object, such as the name's
				continue
			}
			fmt.Fprintf(&b, "\n    %s: %s", c.Field, c.Message)
		}
	} else {
		b.WriteString("\n    " + st.Message)
	}
	return errors.New(b.String())
}

func credentialSecrets(shop *shopv1.Shop) []client.Object {
	var out []client.Object
	for _, k := range builder.AllCredentials {
		out = append(out, builder.CredentialSecret(shop, k, nil))
	}
	return out
}

// groups orders the tree: what a reader looks for first.
var groups = []struct{ component, title string }{
	{"user", "service user"}, {"order", "service order"}, {"payment", "service payment"}, {"inventory", "service inventory"},
	{builder.ComponentPostgres, "data: Postgres"}, {builder.ComponentRedis, "data: Redis"},
	{builder.ComponentGateway, "gateway"}, {builder.ComponentSecurity, "zero trust (shop-wide)"},
	{builder.ComponentCA, "certificate authority"}, {builder.ComponentCredentials, "credentials (created once)"},
}

func printTree(w io.Writer, shop *shopv1.Shop, live []*unstructured.Unstructured) {
	fmt.Fprintf(w, "Shop %s/%s  (mesh %s, deletionPolicy %s, %d children)\n", shop.Namespace, shop.Name,
		builder.Mesh(shop), shop.Spec.DeletionPolicy, len(live))
	byComponent := map[string][]*unstructured.Unstructured{}
	for _, o := range live {
		c := o.GetLabels()[builder.LabelComponent]
		byComponent[c] = append(byComponent[c], o)
	}
	for gi, g := range groups {
		objs := byComponent[g.component]
		if len(objs) == 0 {
			continue
		}
		lastGroup := gi == len(groups)-1
		branch, indent := "├── ", "│   "
		if lastGroup {
			branch, indent = "└── ", "    "
		}
		fmt.Fprintf(w, "%s%s\n", branch, g.title)
		for i, o := range objs {
			leaf := "├── "
			if i == len(objs)-1 {
				leaf = "└── "
			}
			fmt.Fprintf(w, "%s%s%-24s %-28s %s\n", indent, leaf, o.GetKind(), o.GetName(), facts(o))
		}
	}
	fmt.Fprintln(w)
}

func str(o *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(o.Object, path...)
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func slice(o *unstructured.Unstructured, path ...string) []any {
	v, _, _ := unstructured.NestedSlice(o.Object, path...)
	return v
}

// facts is the one line a reviewer wants about an object.
func facts(o *unstructured.Unstructured) string {
	switch o.GetKind() {
	case "Deployment":
		replicas := "replicas " + str(o, "spec", "replicas")
		c := slice(o, "spec", "template", "spec", "containers")[0].(map[string]any)
		return fmt.Sprintf("%s, image %s, non-root read-only", replicas, c["image"])
	case "StatefulSet":
		c := slice(o, "spec", "template", "spec", "containers")[0].(map[string]any)
		claims := slice(o, "spec", "volumeClaimTemplates")
		size := ""
		if len(claims) > 0 {
			size, _, _ = unstructured.NestedString(claims[0].(map[string]any), "spec", "resources", "requests", "storage")
		}
		return fmt.Sprintf("replicas %s, image %s, %s per pod", str(o, "spec", "replicas"), c["image"], size)
	case "HorizontalPodAutoscaler":
		return fmt.Sprintf("%s..%s replicas on CPU", str(o, "spec", "minReplicas"), str(o, "spec", "maxReplicas"))
	case "Service":
		var ports []string
		for _, p := range slice(o, "spec", "ports") {
			pm := p.(map[string]any)
			ports = append(ports, fmt.Sprintf("%v/%v", pm["name"], pm["port"]))
		}
		kind := "ClusterIP"
		if str(o, "spec", "clusterIP") == "None" {
			kind = "headless"
		}
		return kind + " " + strings.Join(ports, " ")
	case "PodDisruptionBudget":
		return "maxUnavailable " + str(o, "spec", "maxUnavailable")
	case "NetworkPolicy":
		return fmt.Sprintf("%d ingress, %d egress rules (deny all else)", len(slice(o, "spec", "ingress")), len(slice(o, "spec", "egress")))
	case "Certificate":
		f := "Secret " + str(o, "spec", "secretName")
		if uris := slice(o, "spec", "uris"); len(uris) > 0 {
			f += ", " + fmt.Sprint(uris[0])
		} else if str(o, "spec", "isCA") == "true" {
			f += ", CA"
		}
		return f
	case "Issuer":
		if str(o, "spec", "selfSigned") != "" {
			return "self-signed"
		}
		return "CA from Secret " + str(o, "spec", "ca", "secretName")
	case "Secret", "ConfigMap":
		var keys []string
		for k := range o.Object["data"].(map[string]any) {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "keys " + strings.Join(keys, ", ")
	case "ServiceAccount":
		return "identity, no API token mounted"
	case "AuthorizationPolicy":
		return fmt.Sprintf("%s, %d rules from the call graph", str(o, "spec", "action"), len(slice(o, "spec", "rules")))
	case "PeerAuthentication":
		return "mTLS " + str(o, "spec", "mtls", "mode") + " (ops port PERMISSIVE)"
	case "RequestAuthentication":
		return "JWT issuer " + fmt.Sprint(slice(o, "spec", "jwtRules")[0].(map[string]any)["issuer"])
	case "Gateway":
		return fmt.Sprintf("class %s, %d HTTPS listener(s)", str(o, "spec", "gatewayClassName"), len(slice(o, "spec", "listeners")))
	case "HTTPRoute":
		var paths []string
		for _, r := range slice(o, "spec", "rules") {
			for _, m := range r.(map[string]any)["matches"].([]any) {
				v, _, _ := unstructured.NestedString(m.(map[string]any), "path", "value")
				if !slices.Contains(paths, v) {
					paths = append(paths, v)
				}
			}
		}
		return strings.Join(paths, " ")
	}
	return ""
}

func printConditions(w io.Writer, shop *shopv1.Shop, nodes int) {
	fmt.Fprintf(w, "Conditions of Shop %s (generation %d, observed %d; services ready %s):\n",
		shop.Name, shop.Generation, shop.Status.ObservedGeneration, shop.Status.ServicesReady)
	for _, c := range shop.Status.Conditions {
		fmt.Fprintf(w, "  %-12s %-6s %-22s %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if nodes == 0 {
		fmt.Fprintln(w, "\nThis control plane has no nodes, no kube-controller-manager and no cert-manager, so no pod")
		fmt.Fprintln(w, "runs and no certificate is issued: the Shop stays Progressing, waiting for them.")
	}
}

func writeKubeconfig(cfg *rest.Config) (string, error) {
	dir, err := os.MkdirTemp("", "shopstack-demo-")
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	kc.CurrentContext = "local"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}
