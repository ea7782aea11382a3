package builder

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// runningPod is a pod a workload would create: the template's labels plus
// those the controllers add.
type runningPod struct {
	name, workload string
	labels         labels.Set
	spec           corev1.PodSpec
}

func runningPods(objs []client.Object) []runningPod {
	var pods []runningPod
	for _, o := range objs {
		switch w := o.(type) {
		case *appsv1.Deployment:
			pods = append(pods, runningPod{name: w.Name + "-abc12", workload: kindName(w), labels: w.Spec.Template.Labels, spec: w.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			for i := range *w.Spec.Replicas {
				name := fmt.Sprintf("%s-%d", w.Name, i)
				l := labels.Merge(w.Spec.Template.Labels, labels.Set{"statefulset.kubernetes.io/pod-name": name})
				pods = append(pods, runningPod{name: name, workload: kindName(w), labels: l, spec: w.Spec.Template.Spec})
			}
		}
	}
	return pods
}

func selected(t *testing.T, sel *metav1.LabelSelector, pods []runningPod) []runningPod {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	var out []runningPod
	for _, p := range pods {
		if s.Matches(p.labels) {
			out = append(out, p)
		}
	}
	return out
}

func containerPortNames(spec corev1.PodSpec) []string {
	var names []string
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			names = append(names, p.Name)
		}
	}
	return names
}

func TestWorkloadSelectorsMatchTheirOwnPods(t *testing.T) {
	objs := everyObject(shopv1.MeshNone)
	pods := runningPods(objs)
	for _, o := range objs {
		var sel *metav1.LabelSelector
		var tpl corev1.PodTemplateSpec
		switch w := o.(type) {
		case *appsv1.Deployment:
			sel, tpl = w.Spec.Selector, w.Spec.Template
		case *appsv1.StatefulSet:
			sel, tpl = w.Spec.Selector, w.Spec.Template
		default:
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Matches(labels.Set(tpl.Labels)) {
			t.Errorf("%s selector %v does not match its template labels %v", kindName(o), sel, tpl.Labels)
		}
		// The selector must not reach another workload's pods.
		for _, p := range selected(t, sel, pods) {
			if p.workload != kindName(o) {
				t.Errorf("%s selector also selects pod %s of %s", kindName(o), p.name, p.workload)
			}
		}
		for _, c := range tpl.Spec.TopologySpreadConstraints {
			for _, p := range selected(t, c.LabelSelector, pods) {
				if p.workload != kindName(o) {
					t.Errorf("%s spreads against pod %s of %s", kindName(o), p.name, p.workload)
				}
			}
		}
	}
}

func TestServicesReachTheirPods(t *testing.T) {
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			objs := everyObject(mesh)
			pods := runningPods(objs)
			for _, svc := range all[*corev1.Service](objs) {
				got := selected(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pods)
				if len(got) == 0 {
					t.Errorf("Service %s selects no pod", svc.Name)
					continue
				}
				for _, p := range got {
					if p.workload != got[0].workload {
						t.Errorf("Service %s selects pods of %s and %s", svc.Name, got[0].workload, p.workload)
					}
				}
				names := containerPortNames(got[0].spec)
				for _, port := range svc.Spec.Ports {
					if port.TargetPort.Type != intstr.String || !slices.Contains(names, port.TargetPort.StrVal) {
						t.Errorf("Service %s port %s targets %s, which %s does not name (%v)", svc.Name, port.Name, port.TargetPort.String(), got[0].workload, names)
					}
				}
			}
		})
	}
}

func TestPrimaryServicesSelectOnePod(t *testing.T) {
	objs := Build(testShop(), testInputs())
	pods := runningPods(objs)
	for _, name := range []string{"acme-postgres-rw", "acme-redis-master"} {
		svc := find[*corev1.Service](t, objs, name)
		if got := selected(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pods); len(got) != 1 {
			t.Errorf("Service %s selects %d pods, want exactly the primary", name, len(got))
		}
	}
}

func TestStatefulSetsHaveTheirHeadlessService(t *testing.T) {
	objs := Build(testShop(), testInputs())
	for _, sts := range all[*appsv1.StatefulSet](objs) {
		svc := find[*corev1.Service](t, objs, sts.Spec.ServiceName)
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s names Service %s, which is not headless", sts.Name, svc.Name)
		}
		if !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("headless Service %s hides unready pods: peers could not find each other while starting", svc.Name)
		}
	}
}

func TestHorizontalPodAutoscalersTargetExistingDeployments(t *testing.T) {
	objs := everyObject(shopv1.MeshNone, withAutoscaling(shopv1.ServiceUser, 2, 5))
	for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		ref := h.Spec.ScaleTargetRef
		d := find[*appsv1.Deployment](t, objs, ref.Name)
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Errorf("HPA %s targets %s %s, want apps/v1 Deployment", h.Name, ref.APIVersion, ref.Kind)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("HPA %s scales Deployment %s, which also sets replicas: the two would fight", h.Name, d.Name)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				t.Errorf("container %s has no CPU request: CPU utilisation cannot be computed", c.Name)
			}
		}
	}
}

// TestEveryMountedObjectExists checks that each Secret and ConfigMap a pod
// mounts is built, created once as credentials, or written by cert-manager.
func TestEveryMountedObjectExists(t *testing.T) {
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			shop := testShop(withMesh(mesh), withHosts(testHost))
			objs := Build(shop, testInputs())
			secrets := map[string]bool{}
			for _, k := range AllCredentials {
				secrets[CredentialSecretName(shop, k)] = true
			}
			for _, c := range all[*cmapi.Certificate](objs) {
				secrets[c.Spec.SecretName] = true
			}
			configMaps := map[string]bool{}
			for _, cm := range all[*corev1.ConfigMap](objs) {
				configMaps[cm.Name] = true
			}
			for w, tpl := range podTemplates(objs) {
				for _, v := range tpl.Spec.Volumes {
					if v.Secret != nil && !secrets[v.Secret.SecretName] {
						t.Errorf("%s mounts Secret %s, which nothing creates", w, v.Secret.SecretName)
					}
					if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
						t.Errorf("%s mounts ConfigMap %s, which is not built", w, v.ConfigMap.Name)
					}
				}
				mounts := map[string]bool{}
				for _, c := range append(slices.Clone(tpl.Spec.InitContainers), tpl.Spec.Containers...) {
					for _, m := range c.VolumeMounts {
						mounts[m.Name] = true
					}
				}
				claims := map[string]bool{}
				for _, v := range tpl.Spec.Volumes {
					claims[v.Name] = true
				}
				for m := range mounts {
					if !claims[m] && m != "data" { // data is the volume claim template
						t.Errorf("%s mounts volume %s, which the pod does not declare", w, m)
					}
				}
			}
		})
	}
}

// TestServiceAddressesNameExistingServices follows every address a service
// is configured with to a Service (or a StatefulSet pod) and port.
func TestServiceAddressesNameExistingServices(t *testing.T) {
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			shop := testShop(withMesh(mesh))
			objs := Build(shop, testInputs())
			ports := map[string][]int32{} // host -> ports
			for _, s := range all[*corev1.Service](objs) {
				var ps []int32
				for _, p := range s.Spec.Ports {
					ps = append(ps, p.Port)
				}
				for _, h := range []string{s.Name, s.Name + "." + shop.Namespace + ".svc", s.Name + "." + shop.Namespace + ".svc.cluster.local"} {
					ports[h] = ps
				}
				if s.Spec.ClusterIP == corev1.ClusterIPNone {
					for _, p := range runningPods(objs) {
						if selected(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, []runningPod{p}) != nil {
							ports[p.name+"."+s.Name+"."+shop.Namespace+".svc.cluster.local"] = ps
						}
					}
				}
			}
			check := func(where, hostport string) {
				host, port, err := net.SplitHostPort(hostport)
				if err != nil {
					t.Errorf("%s: %q is not host:port", where, hostport)
					return
				}
				ps, ok := ports[host]
				if !ok {
					t.Errorf("%s: no Service or pod is named %s", where, host)
					return
				}
				if !slices.ContainsFunc(ps, func(p int32) bool { return fmt.Sprint(p) == port }) {
					t.Errorf("%s: %s has no port %s (%v)", where, host, port, ps)
				}
			}
			for _, d := range all[*appsv1.Deployment](objs) {
				env := map[string]string{}
				for _, e := range d.Spec.Template.Spec.Containers[0].Env {
					env[e.Name] = e.Value
				}
				check(d.Name+" postgres", env["SHOPSTACK_POSTGRES_HOST"]+":"+env["SHOPSTACK_POSTGRES_PORT"])
				if s := env["SHOPSTACK_REDIS_SENTINELS"]; s != "" {
					for _, a := range strings.Split(s, ",") {
						check(d.Name+" sentinel", a)
					}
				}
				for _, k := range []string{"SHOPSTACK_INVENTORY_URL", "SHOPSTACK_PAYMENT_URL"} {
					if v := env[k]; v != "" {
						u, err := url.Parse(v)
						if err != nil {
							t.Fatal(err)
						}
						wantScheme := map[shopv1.MeshMode]string{shopv1.MeshNone: "https", shopv1.MeshIstio: "http"}[mesh]
						if u.Scheme != wantScheme {
							t.Errorf("%s %s scheme %s, want %s under mesh %s", d.Name, k, u.Scheme, wantScheme, mesh)
						}
						check(d.Name+" "+k, u.Host)
					}
				}
			}
			pg := find[*appsv1.StatefulSet](t, objs, "acme-postgres")
			for _, e := range pg.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "PRIMARY_HOST" {
					check("postgres PRIMARY_HOST", e.Value+":5432")
				}
			}
		})
	}
}
