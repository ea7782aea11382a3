package builder

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

// DefaultReplicas of a service without replicas or autoscaling.
const DefaultReplicas int32 = 2

// Where the services find their mounted files.
const (
	MountTLS      = "/etc/shopstack/tls"
	MountJWKS     = "/etc/shopstack/jwks"
	MountPostgres = "/etc/shopstack/postgres"
	MountRedis    = "/etc/shopstack/redis"
	MountJWT      = "/etc/shopstack/jwt"
	MountPayment  = "/etc/shopstack/payment"
	MountAdmin    = "/etc/shopstack/admin"
	MountTmp      = "/tmp"
	JWKSKey       = "jwks.json"
)

func serviceSpec(shop *shopv1.Shop, svc shopv1.ServiceName) shopv1.ServiceSpec {
	if s := shop.Spec.Services.Get(svc); s != nil {
		return *s
	}
	return shopv1.ServiceSpec{}
}

// ServiceAccount is the identity of one service.
func ServiceAccount(shop *shopv1.Shop, svc shopv1.ServiceName) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   ObjectMeta(shop, ServiceAccountName(shop, svc), string(svc)),
		AutomountServiceAccountToken: ptr.To(false),
	}
}

// Service exposes one service's three ports.
func Service(shop *shopv1.Shop, svc shopv1.ServiceName) *corev1.Service {
	ports := []corev1.ServicePort{}
	for _, p := range []callgraph.Port{callgraph.PublicPort, callgraph.InternalPort, callgraph.OpsPort} {
		ports = append(ports, corev1.ServicePort{
			Name: p.Name, Port: p.Number, TargetPort: intstr.FromString(p.Name), Protocol: corev1.ProtocolTCP,
			AppProtocol: ptr.To(appProtocol(shop, p)),
		})
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: ObjectMeta(shop, Name(shop, string(svc)), string(svc)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(shop, string(svc)),
			Ports:    ports,
		},
	}
}

// appProtocol tells meshes and gateways what a port speaks: behind Istio's
// sidecar every port is plain HTTP; without a mesh public and internal are TLS.
func appProtocol(shop *shopv1.Shop, p callgraph.Port) string {
	if p == callgraph.OpsPort || Mesh(shop) == shopv1.MeshIstio {
		return "http"
	}
	return "https"
}

// Autoscaled reports whether a service has a HorizontalPodAutoscaler.
func Autoscaled(shop *shopv1.Shop, svc shopv1.ServiceName) bool {
	return serviceSpec(shop, svc).Autoscaling != nil
}

// DesiredReplicas is the fixed replica count, or the autoscaler's minimum.
func DesiredReplicas(shop *shopv1.Shop, svc shopv1.ServiceName) int32 {
	s := serviceSpec(shop, svc)
	if s.Autoscaling != nil {
		return minReplicas(s.Autoscaling)
	}
	if s.Replicas != nil {
		return *s.Replicas
	}
	return DefaultReplicas
}

func serviceResources(shop *shopv1.Shop, svc shopv1.ServiceName) corev1.ResourceRequirements {
	if r := serviceSpec(shop, svc).Resources; r != nil {
		return resourceRequirements(r)
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
}

func resourceRequirements(r *shopv1.Resources) corev1.ResourceRequirements {
	list := func(a *shopv1.ResourceAmounts) corev1.ResourceList {
		if a == nil || (a.CPU == nil && a.Memory == nil) {
			return nil
		}
		l := corev1.ResourceList{}
		if a.CPU != nil {
			l[corev1.ResourceCPU] = *a.CPU
		}
		if a.Memory != nil {
			l[corev1.ResourceMemory] = *a.Memory
		}
		return l
	}
	return corev1.ResourceRequirements{Requests: list(r.Requests), Limits: list(r.Limits)}
}

// AllowedCallers lists the SPIFFE IDs the service's internal mTLS listener
// accepts, from the call graph.
func AllowedCallers(shop *shopv1.Shop, svc shopv1.ServiceName) []string {
	var ids []string
	for _, from := range callgraph.Callers(callgraph.Peer(svc), callgraph.InternalPort) {
		ids = append(ids, SPIFFEID(shop, ServiceAccountName(shop, shopv1.ServiceName(from))))
	}
	sort.Strings(ids)
	return ids
}

func serviceEnv(shop *shopv1.Shop, in Inputs, svc shopv1.ServiceName) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "SHOPSTACK_SERVICE", Value: string(svc)},
		{Name: "SHOPSTACK_SHOP", Value: shop.Name},
		{Name: "SHOPSTACK_MESH", Value: string(Mesh(shop))},
		{Name: "SHOPSTACK_PUBLIC_ADDR", Value: fmt.Sprintf(":%d", callgraph.PublicPort.Number)},
		{Name: "SHOPSTACK_INTERNAL_ADDR", Value: fmt.Sprintf(":%d", callgraph.InternalPort.Number)},
		{Name: "SHOPSTACK_OPS_ADDR", Value: fmt.Sprintf(":%d", callgraph.OpsPort.Number)},
		{Name: "SHOPSTACK_TLS_DIR", Value: MountTLS},
		{Name: "SHOPSTACK_JWKS_FILE", Value: MountJWKS + "/" + JWKSKey},
		{Name: "SHOPSTACK_JWT_ISSUER", Value: JWTIssuer(shop)},
		{Name: "SHOPSTACK_JWT_AUDIENCE", Value: JWTAudience(shop)},
		{Name: "SHOPSTACK_ALLOWED_CALLERS", Value: strings.Join(AllowedCallers(shop, svc), ",")},
		{Name: "SHOPSTACK_POSTGRES_HOST", Value: Name(shop, "postgres-rw")},
		{Name: "SHOPSTACK_POSTGRES_PORT", Value: strconv.Itoa(int(callgraph.PostgresPort.Number))},
		{Name: "SHOPSTACK_POSTGRES_DATABASE", Value: string(svc)},
		{Name: "SHOPSTACK_POSTGRES_USER", Value: string(svc)},
		{Name: "SHOPSTACK_POSTGRES_PASSWORD_FILE", Value: MountPostgres + "/password"},
		{Name: "SHOPSTACK_RATE_LIMIT_RPS", Value: strconv.Itoa(int(rateLimit(shop).RequestsPerSecond))},
		{Name: "SHOPSTACK_RATE_LIMIT_BURST", Value: strconv.Itoa(int(rateLimit(shop).Burst))},
	}
	if usesRedis(svc) {
		env = append(env,
			corev1.EnvVar{Name: "SHOPSTACK_REDIS_SENTINELS", Value: RedisSentinelAddrs(shop)},
			corev1.EnvVar{Name: "SHOPSTACK_REDIS_MASTER_NAME", Value: RedisMasterName},
			corev1.EnvVar{Name: "SHOPSTACK_REDIS_USER", Value: string(svc)},
			corev1.EnvVar{Name: "SHOPSTACK_REDIS_PASSWORD_FILE", Value: MountRedis + "/password"},
		)
	}
	switch svc {
	case shopv1.ServiceUser:
		env = append(env,
			corev1.EnvVar{Name: "SHOPSTACK_JWT_SIGNING_KEY_FILE", Value: MountJWT + "/" + KeyJWTSigningKey},
			corev1.EnvVar{Name: "SHOPSTACK_JWT_KEY_ID_FILE", Value: MountJWT + "/" + KeyJWTKeyID},
			corev1.EnvVar{Name: "SHOPSTACK_ADMIN_DIR", Value: MountAdmin},
		)
	case shopv1.ServicePayment:
		env = append(env, corev1.EnvVar{Name: "SHOPSTACK_ENCRYPTION_KEY_FILE", Value: MountPayment + "/" + KeyEncryptionKey})
	case shopv1.ServiceOrder:
		env = append(env,
			corev1.EnvVar{Name: "SHOPSTACK_INVENTORY_URL", Value: internalURL(shop, shopv1.ServiceInventory)},
			corev1.EnvVar{Name: "SHOPSTACK_PAYMENT_URL", Value: internalURL(shop, shopv1.ServicePayment)},
		)
	}
	if len(shop.Spec.Gateway.AllowedSourceRanges) > 0 && Mesh(shop) == shopv1.MeshNone {
		ranges := make([]string, 0, len(shop.Spec.Gateway.AllowedSourceRanges))
		for _, r := range shop.Spec.Gateway.AllowedSourceRanges {
			ranges = append(ranges, string(r))
		}
		env = append(env, corev1.EnvVar{Name: "SHOPSTACK_ALLOWED_SOURCE_RANGES", Value: strings.Join(ranges, ",")})
	}
	return env
}

func internalURL(shop *shopv1.Shop, svc shopv1.ServiceName) string {
	scheme := "https"
	if Mesh(shop) == shopv1.MeshIstio {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s.%s.svc:%d", scheme, Name(shop, string(svc)), shop.Namespace, callgraph.InternalPort.Number)
}

func rateLimit(shop *shopv1.Shop) shopv1.RateLimitSpec {
	rl := shop.Spec.Gateway.RateLimit
	if rl.RequestsPerSecond == 0 {
		rl.RequestsPerSecond = 50
	}
	if rl.Burst == 0 {
		rl.Burst = 100
	}
	return rl
}

func usesRedis(svc shopv1.ServiceName) bool {
	for _, f := range callgraph.OutOf(callgraph.Peer(svc)) {
		if f.To == callgraph.Redis {
			return true
		}
	}
	return false
}

func secretVolume(name, secret string, items ...corev1.KeyToPath) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: secret, Items: items, DefaultMode: ptr.To[int32](0o440),
	}}}
}

// ServiceCertSecretName is the Secret cert-manager writes a service's certificate to.
func ServiceCertSecretName(shop *shopv1.Shop, svc shopv1.ServiceName) string {
	return Name(shop, string(svc), "tls")
}

// JWKSConfigMapName publishes the token verification keys.
func JWKSConfigMapName(shop *shopv1.Shop) string { return Name(shop, "jwks") }

func serviceVolumes(shop *shopv1.Shop, svc shopv1.ServiceName) ([]corev1.Volume, []corev1.VolumeMount) {
	vols := []corev1.Volume{
		secretVolume("tls", ServiceCertSecretName(shop, svc)),
		{Name: "jwks", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: JWKSConfigMapName(shop)},
		}}},
		secretVolume("postgres", CredentialSecretName(shop, CredPostgres), corev1.KeyToPath{Key: string(svc), Path: "password"}),
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: "tls", MountPath: MountTLS, ReadOnly: true},
		{Name: "jwks", MountPath: MountJWKS, ReadOnly: true},
		{Name: "postgres", MountPath: MountPostgres, ReadOnly: true},
		{Name: "tmp", MountPath: MountTmp},
	}
	if usesRedis(svc) {
		vols = append(vols, secretVolume("redis", CredentialSecretName(shop, CredRedis), corev1.KeyToPath{Key: string(svc), Path: "password"}))
		mounts = append(mounts, corev1.VolumeMount{Name: "redis", MountPath: MountRedis, ReadOnly: true})
	}
	switch svc {
	case shopv1.ServiceUser:
		vols = append(vols,
			secretVolume("jwt", CredentialSecretName(shop, CredJWTSigning)),
			secretVolume("admin", CredentialSecretName(shop, CredAdmin)))
		mounts = append(mounts,
			corev1.VolumeMount{Name: "jwt", MountPath: MountJWT, ReadOnly: true},
			corev1.VolumeMount{Name: "admin", MountPath: MountAdmin, ReadOnly: true})
	case shopv1.ServicePayment:
		vols = append(vols, secretVolume("payment", CredentialSecretName(shop, CredPayment)))
		mounts = append(mounts, corev1.VolumeMount{Name: "payment", MountPath: MountPayment, ReadOnly: true})
	}
	return vols, mounts
}

// RestrictedContainerSecurityContext meets the restricted Pod Security Standard.
func RestrictedContainerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func podSecurityContext(uid int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(uid),
		RunAsGroup:     ptr.To(uid),
		FSGroup:        ptr.To(uid),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// topologySpread spreads the pods of one component across zones or nodes as a
// soft preference, so a single node still schedules them all.
func topologySpread(shop *shopv1.Shop, component string) []corev1.TopologySpreadConstraint {
	key := corev1.LabelTopologyZone
	if shop.Spec.Availability.SpreadAcross == shopv1.SpreadNode {
		key = corev1.LabelHostname
	}
	return []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       key,
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: SelectorLabels(shop, component)},
	}}
}

// podLabels are the pod template labels: the child labels plus the tier and the
// mesh's sidecar switch. Postgres and Redis stay outside the mesh: they speak
// TLS and authenticate clients themselves, and the operator (not in the mesh)
// must reach Postgres.
func podLabels(shop *shopv1.Shop, component, tier string) map[string]string {
	l := Labels(shop, component)
	l[LabelTier] = tier
	l["sidecar.istio.io/inject"] = strconv.FormatBool(Mesh(shop) == shopv1.MeshIstio && tier == TierService)
	return l
}

func applyScheduling(shop *shopv1.Shop, spec *corev1.PodSpec) {
	s := shop.Spec.Scheduling
	spec.NodeSelector = s.NodeSelector
	spec.Tolerations = s.Tolerations
	spec.PriorityClassName = s.PriorityClassName
	spec.ImagePullSecrets = shop.Spec.ImagePullSecrets
}

func pullPolicy(shop *shopv1.Shop) corev1.PullPolicy {
	if shop.Spec.ImagePullPolicy == "" {
		return corev1.PullIfNotPresent
	}
	return shop.Spec.ImagePullPolicy
}

// ServiceUID is the user the service images run as.
const ServiceUID int64 = 65532

// Deployment runs one service. Under autoscaling it leaves spec.replicas to the
// HorizontalPodAutoscaler.
func Deployment(shop *shopv1.Shop, in Inputs, svc shopv1.ServiceName) *appsv1.Deployment {
	vols, mounts := serviceVolumes(shop, svc)
	ports := []corev1.ContainerPort{}
	for _, p := range []callgraph.Port{callgraph.PublicPort, callgraph.InternalPort, callgraph.OpsPort} {
		ports = append(ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.Number, Protocol: corev1.ProtocolTCP})
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString(callgraph.OpsPort.Name), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 2,
		}
	}
	pod := corev1.PodSpec{
		ServiceAccountName:            ServiceAccountName(shop, svc),
		AutomountServiceAccountToken:  ptr.To(false),
		SecurityContext:               podSecurityContext(ServiceUID),
		TerminationGracePeriodSeconds: ptr.To[int64](30),
		TopologySpreadConstraints:     topologySpread(shop, string(svc)),
		Volumes:                       vols,
		Containers: []corev1.Container{{
			Name:            string(svc),
			Image:           ServiceImage(shop, in, svc),
			ImagePullPolicy: pullPolicy(shop),
			Ports:           ports,
			Env:             serviceEnv(shop, in, svc),
			Resources:       serviceResources(shop, svc),
			VolumeMounts:    mounts,
			SecurityContext: RestrictedContainerSecurityContext(),
			StartupProbe:    probe("/healthz", 2, 30),
			LivenessProbe:   probe("/healthz", 10, 3),
			ReadinessProbe:  probe("/readyz", 5, 3),
		}},
	}
	applyScheduling(shop, &pod)
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: ObjectMeta(shop, Name(shop, string(svc)), string(svc)),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(shop, string(svc))},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(shop, string(svc), TierService)},
				Spec:       pod,
			},
		},
	}
	d.Labels[LabelVersion] = ImageTag(shop, in)
	if !Autoscaled(shop, svc) {
		d.Spec.Replicas = ptr.To(DesiredReplicas(shop, svc))
	}
	return d
}

// minReplicas is the autoscaler's lower bound with the CRD's default of 2,
// so a Shop rendered without a cluster matches what the API server stores.
func minReplicas(as *shopv1.AutoscalingSpec) int32 {
	if as.MinReplicas == 0 {
		return 2
	}
	return as.MinReplicas
}

// HorizontalPodAutoscaler scales one service on CPU, or nil without autoscaling.
func HorizontalPodAutoscaler(shop *shopv1.Shop, svc shopv1.ServiceName) *autoscalingv2.HorizontalPodAutoscaler {
	as := serviceSpec(shop, svc).Autoscaling
	if as == nil {
		return nil
	}
	target := as.TargetCPUUtilizationPercentage
	if target == 0 {
		target = 70
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: ObjectMeta(shop, Name(shop, string(svc)), string(svc)),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: Name(shop, string(svc))},
			MinReplicas:    ptr.To(minReplicas(as)),
			MaxReplicas:    as.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)},
				},
			}},
		},
	}
}

// PodDisruptionBudget allows one voluntary disruption at a time, which also
// keeps a drain possible when only one replica exists.
func PodDisruptionBudget(shop *shopv1.Shop, component string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: ObjectMeta(shop, Name(shop, component), component),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: SelectorLabels(shop, component)},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}
