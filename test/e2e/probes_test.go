//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
)

// probeRoleLabel marks the suite's probe pods (and tells them apart from the
// Shop's own pods when they carry a service's labels).
const probeRoleLabel = "e2e.shopstack.dev/probe"

// Where the probe pods find their mounted files.
const (
	caFile    = "/etc/e2e/ca/ca.crt"
	adminDir  = "/etc/e2e/admin"
	clientDir = "/etc/e2e/tls"
)

// The probe pods, one per identity the checks need.
const (
	probeGateway    = "gateway"       // the Shop's gateway label: the public ports admit it
	probeMonitoring = "monitoring"    // in a namespace labelled shopstack.dev/monitoring
	probePlain      = "plain"         // no labels that any policy names
	probeOrderNoTLS = "order-nocert"  // order's labels, no client certificate
	probeOrderOwn   = "order-cert"    // order's labels and order's own certificate
	probeOrderWrong = "order-invcert" // order's labels, inventory's certificate
	probeAsPayment  = "as-payment"    // payment's labels, no certificate
	// The same identities with all egress opened (egressOpenLabel).
	probeAsPaymentOpen = "as-payment-open"
	probeOrderOpen     = "order-open"
)

// egressOpenLabel marks the probe pods whose egress the suite's own
// NetworkPolicy opens entirely, so that only the target's ingress rules can
// refuse them.
const egressOpenLabel = "e2e.shopstack.dev/egress"

// egressOpenPolicy allows every egress of the pods labelled egressOpenLabel.
func (s *suite) egressOpenPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-probe-egress-open", Namespace: s.cfg.namespace},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{egressOpenLabel: "open"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
		},
	}
}

// probeSpec describes one probe pod.
type probeSpec struct {
	role      string
	namespace string
	labels    map[string]string
	// clientCertOf mounts a service's certificate Secret (tls.crt, tls.key,
	// ca.crt) at clientDir.
	clientCertOf shopv1.ServiceName
	admin        bool // mount the admin Secret at adminDir
	ca           bool // mount the Shop's CA certificate at caFile
	// serviceLabels: the pod carries a service's selector labels, so its
	// Service would send it traffic; a readiness probe that never passes
	// keeps it out of the Service's endpoints.
	serviceLabels bool
	openEgress    bool     // egressOpenLabel: the suite's policy opens its egress
	args          []string // default: sleep
}

func (s *suite) probeSpecs() []probeSpec {
	as := func(svc shopv1.ServiceName) map[string]string { return builder.SelectorLabels(s.shop, string(svc)) }
	return []probeSpec{
		{role: probeGateway, namespace: s.cfg.namespace, labels: map[string]string{builder.GatewayNameLabel: builder.GatewayName(s.shop)}, admin: true, ca: true},
		{role: probeMonitoring, namespace: s.cfg.monitoringNS},
		{role: probePlain, namespace: s.cfg.namespace, ca: true},
		{role: probeOrderNoTLS, namespace: s.cfg.namespace, labels: as(shopv1.ServiceOrder), ca: true, serviceLabels: true},
		{role: probeOrderOwn, namespace: s.cfg.namespace, labels: as(shopv1.ServiceOrder), clientCertOf: shopv1.ServiceOrder, serviceLabels: true},
		{role: probeOrderWrong, namespace: s.cfg.namespace, labels: as(shopv1.ServiceOrder), clientCertOf: shopv1.ServiceInventory, serviceLabels: true},
		{role: probeAsPayment, namespace: s.cfg.namespace, labels: as(shopv1.ServicePayment), ca: true, serviceLabels: true},
		{role: probeAsPaymentOpen, namespace: s.cfg.namespace, labels: as(shopv1.ServicePayment), serviceLabels: true, openEgress: true},
		{role: probeOrderOpen, namespace: s.cfg.namespace, labels: as(shopv1.ServiceOrder), serviceLabels: true, openEgress: true},
	}
}

// serviceIdentityProbes carry a service's labels; they go once checks 3 and 4
// are done, before they could count in an autoscaler's or a budget's pods.
var serviceIdentityProbes = []string{probeOrderNoTLS, probeOrderOwn, probeOrderWrong, probeAsPayment, probeAsPaymentOpen, probeOrderOpen}

func probePodName(role string) string { return "e2e-probe-" + role }

func (s *suite) probePod(p probeSpec) *corev1.Pod {
	lbl := map[string]string{probeRoleLabel: p.role}
	for k, v := range p.labels {
		lbl[k] = v
	}
	if p.openEgress {
		lbl[egressOpenLabel] = "open"
	}
	args := p.args
	if len(args) == 0 {
		args = []string{"sleep", "-for", "90m"}
	}
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	secret := func(name, secretName, path string, items ...corev1.KeyToPath) {
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secretName, Items: items, DefaultMode: ptr.To[int32](0o440),
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: path, ReadOnly: true})
	}
	if p.ca {
		// Only the CA's certificate, never its key.
		secret("ca", s.name("ca"), "/etc/e2e/ca", corev1.KeyToPath{Key: "ca.crt", Path: "ca.crt"})
	}
	if p.admin {
		secret("admin", builder.CredentialSecretName(s.shop, builder.CredAdmin), adminDir)
	}
	if p.clientCertOf != "" {
		secret("tls", builder.ServiceCertSecretName(s.shop, p.clientCertOf), clientDir)
	}
	c := corev1.Container{
		Name:            "probe",
		Image:           s.cfg.probeImage,
		ImagePullPolicy: s.cfg.pullPolicy,
		Command:         []string{"/probe"},
		Args:            args,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		VolumeMounts:    mounts,
		SecurityContext: builder.RestrictedContainerSecurityContext(),
	}
	if p.serviceLabels {
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/probe", "fail"}}},
			PeriodSeconds: 30,
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: probePodName(p.role), Namespace: p.namespace, Labels: lbl},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				FSGroup:        ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{c},
			Volumes:    vols,
		},
	}
}

// startProbes creates the probe pods and waits until each one runs.
func (s *suite) startProbes(t *testing.T, ctx context.Context, specs []probeSpec) bool {
	t.Helper()
	return s.createProbes(t, ctx, specs) && s.waitProbes(t, ctx, specs)
}

// createProbes creates the probe pods without waiting for them: those that
// mount the Shop's Secrets start once the Secrets exist.
func (s *suite) createProbes(t *testing.T, ctx context.Context, specs []probeSpec) bool {
	t.Helper()
	for _, p := range specs {
		pod := s.probePod(p)
		if err := s.c.Create(ctx, pod); err != nil {
			t.Errorf("FAIL: creating probe pod %s/%s: %v", pod.Namespace, pod.Name, err)
			return false
		}
	}
	return true
}

// waitProbes waits until each probe pod runs.
func (s *suite) waitProbes(t *testing.T, ctx context.Context, specs []probeSpec) bool {
	t.Helper()
	ok := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.waitProbeRunning(ctx, p.namespace, probePodName(p.role), 2*time.Minute); err != nil {
				mu.Lock()
				ok = false
				mu.Unlock()
				t.Errorf("FAIL: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok {
		// NetworkPolicy enforcers update their sets of pod addresses a
		// moment after a pod starts.
		time.Sleep(2 * time.Second)
	}
	return ok
}

func (s *suite) waitProbeRunning(ctx context.Context, ns, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pod := &corev1.Pod{}
		err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod)
		state := ""
		if err == nil {
			state = string(pod.Status.Phase)
			for _, cs := range pod.Status.ContainerStatuses {
				if cs.State.Running != nil && pod.Status.PodIP != "" {
					return nil
				}
				if w := cs.State.Waiting; w != nil {
					state += fmt.Sprintf(", %s: %s", w.Reason, w.Message)
				}
				if term := cs.State.Terminated; term != nil {
					return fmt.Errorf("probe pod %s/%s terminated: %s (exit %d) %s", ns, name, term.Reason, term.ExitCode, term.Message)
				}
			}
		} else {
			state = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("probe pod %s/%s not running within %s: %s", ns, name, timeout, state)
		}
		time.Sleep(time.Second)
	}
}

// deleteProbes deletes probe pods by role and waits until they are gone.
func (s *suite) deleteProbes(ctx context.Context, roles ...string) error {
	var pods []*corev1.Pod
	for _, p := range s.probeSpecs() {
		for _, r := range roles {
			if p.role == r {
				pods = append(pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: probePodName(r), Namespace: p.namespace}})
			}
		}
	}
	for _, pod := range pods {
		if err := s.c.Delete(ctx, pod, client.GracePeriodSeconds(0)); ignoreNotFound(err) != nil {
			return err
		}
	}
	for _, pod := range pods {
		if err := s.waitGone(ctx, pod, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (s *suite) probeNamespace(role string) string {
	if role == probeMonitoring {
		return s.cfg.monitoringNS
	}
	return s.cfg.namespace
}

// probe runs one probe command in a probe pod and decodes its JSON line into
// out. An error means the command could not run, not that a check failed.
func (s *suite) probe(ctx context.Context, role string, timeout time.Duration, out any, args ...string) error {
	kargs := append([]string{"-n", s.probeNamespace(role), "exec", probePodName(role), "-c", "probe", "--", "/probe"}, args...)
	stdout, _, err := s.kubectl(ctx, timeout, kargs...)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(last), out); err != nil {
		return fmt.Errorf("probe %s in %s: %w: %q", args[0], role, err, last)
	}
	return nil
}

// mustProbe is probe that fails the test when the command could not run.
func (s *suite) mustProbe(t *testing.T, ctx context.Context, role string, timeout time.Duration, out any, args ...string) bool {
	t.Helper()
	if err := s.probe(ctx, role, timeout, out, args...); err != nil {
		t.Errorf("FAIL: %v", err)
		return false
	}
	return true
}

// The probe's JSON answers (see ./probe).
type (
	dnsResult struct {
		Results []struct {
			Name     string   `json:"name"`
			Addrs    []string `json:"addrs"`
			Error    string   `json:"error"`
			NotFound bool     `json:"not_found"` // NXDOMAIN, not a timeout or a server failure
			MS       int64    `json:"ms"`
		} `json:"results"`
	}
	tcpResult struct {
		Addr      string   `json:"addr"`
		Resolved  string   `json:"resolved"`  // the address dialled; empty: the name did not resolve
		DNSError  string   `json:"dns_error"` // the last resolution's error
		Attempts  int      `json:"attempts"`
		Connected int      `json:"connected"`
		Errors    []string `json:"errors"`
		Kinds     []string `json:"kinds"` // per failed attempt: dns, refused, timeout, unreachable, other
		MS        []int64  `json:"ms"`
	}
	httpResult struct {
		Status    int    `json:"status"`
		Body      string `json:"body"`
		Handshake string `json:"handshake"`
		TLSAlert  string `json:"tls_alert"`
		Error     string `json:"error"`
		MS        int64  `json:"ms"`
		Attempts  int    `json:"attempts"`
	}
	step struct {
		Name   string          `json:"name"`
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
		Text   string          `json:"text"`
		Error  string          `json:"error"`
		MS     int64           `json:"ms"`
	}
	journeyResult struct {
		Steps    []step `json:"steps"`
		FailedAt string `json:"failed_at"`
	}
	ordersResult struct {
		Token     step           `json:"token"`
		Placed    int            `json:"placed"`
		Confirmed int            `json:"confirmed"`
		Statuses  map[string]int `json:"statuses"`
		Failures  []step         `json:"failures"`
		MaxMS     int64          `json:"max_ms"`
		ElapsedMS int64          `json:"elapsed_ms"`
	}
	loadResult struct {
		Final     bool           `json:"final"`
		ElapsedS  float64        `json:"elapsed_s"`
		Requests  int            `json:"requests"`
		Statuses  map[string]int `json:"statuses"`
		Errors    int            `json:"errors"`
		ErrorSeen []string       `json:"error_samples"`
	}
	route struct {
		Iface       string `json:"iface"`
		Destination string `json:"destination"`
		Gateway     string `json:"gateway"`
		Reject      bool   `json:"reject"`
	}
	routesResult struct {
		Allowed    []string `json:"allowed"`
		Routes     []route  `json:"routes"`
		Violations []route  `json:"violations"`
		Error      string   `json:"error"`
	}
)

// onlyDenials: every attempt failed the way a NetworkPolicy refuses a
// connection (a REJECT answers "refused" or "unreachable", a DROP times out),
// and none failed to resolve or in another way.
func (r tcpResult) onlyDenials() bool {
	if len(r.Kinds) != r.Attempts {
		return false
	}
	for _, k := range r.Kinds {
		if k != "refused" && k != "timeout" && k != "unreachable" {
			return false
		}
	}
	return true
}

// failures summarizes the failed attempts, with their kinds.
func (r tcpResult) failures() string {
	if len(r.Errors) == 0 {
		return "no error"
	}
	var parts []string
	for i, e := range r.Errors {
		k := "?"
		if i < len(r.Kinds) {
			k = r.Kinds[i]
		}
		parts = append(parts, k+": "+e)
	}
	return summarize(parts)
}

func (r httpResult) String() string {
	body := r.Body
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("status %d, handshake %q, tls alert %q, error %q, body %q (%d ms, %d attempts)",
		r.Status, r.Handshake, r.TLSAlert, r.Error, body, r.MS, r.Attempts)
}

func (st step) String() string {
	body := string(st.Body)
	if body == "" {
		body = st.Text
	}
	// Bearer tokens stay out of the test log.
	var tok map[string]any
	if json.Unmarshal(st.Body, &tok) == nil && tok["access_token"] != nil {
		tok["access_token"] = "(redacted)"
		b, _ := json.Marshal(tok)
		body = string(b)
	}
	if len(body) > 400 {
		body = body[:400] + "..."
	}
	return fmt.Sprintf("%s: status %d, error %q, body %s (%d ms)", st.Name, st.Status, st.Error, body, st.MS)
}
