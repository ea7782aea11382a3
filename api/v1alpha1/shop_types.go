package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PausedAnnotation stops reconciling a Shop while its value is "true".
const PausedAnnotation = "shopstack.dev/paused"

// ServiceName names one of the four services of a Shop.
type ServiceName string

// The four services of a Shop, in the order they are listed everywhere.
const (
	ServiceUser      ServiceName = "user"
	ServiceOrder     ServiceName = "order"
	ServicePayment   ServiceName = "payment"
	ServiceInventory ServiceName = "inventory"
)

// AllServices lists the services of a Shop in a stable order.
var AllServices = []ServiceName{ServiceUser, ServiceOrder, ServicePayment, ServiceInventory}

// MeshMode selects who enforces mutual TLS and the call graph.
// +kubebuilder:validation:Enum=none;istio
type MeshMode string

const (
	// MeshNone: the services terminate TLS and enforce the call graph themselves.
	MeshNone MeshMode = "none"
	// MeshIstio: Istio sidecars carry mTLS; AuthorizationPolicies enforce the call graph.
	MeshIstio MeshMode = "istio"
)

// DeletionPolicy says what happens to data and credentials when the Shop is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionRetain keeps PersistentVolumeClaims and credentials Secrets.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete removes them with the Shop.
	DeletionDelete DeletionPolicy = "Delete"
)

// SpreadTopology is the failure domain pods are spread across.
// +kubebuilder:validation:Enum=zone;node
type SpreadTopology string

const (
	// SpreadZone spreads pods across topology.kubernetes.io/zone.
	SpreadZone SpreadTopology = "zone"
	// SpreadNode spreads pods across kubernetes.io/hostname.
	SpreadNode SpreadTopology = "node"
)

// Hostname is a DNS name served by the gateway; a leading "*." makes it a wildcard.
// Each label has at most 63 characters; IP addresses are not host names.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
// +kubebuilder:validation:XValidation:rule="!isIP(self)",message="must be a host name, not an IP address"
type Hostname string

// Image is a container image reference; it may not contain white space.
// +kubebuilder:validation:MaxLength=512
// +kubebuilder:validation:Pattern=`^[^\s]+$`
type Image string

// CIDR is an IPv4 or IPv6 address range such as 10.0.0.0/8.
// +kubebuilder:validation:MaxLength=49
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR range such as 10.0.0.0/8 or 2001:db8::/32"
type CIDR string

// ShopSpec is the desired state of a Shop.
type ShopSpec struct {
	// version is the tag of the service images. Unset means the operator's own
	// version, so an operator upgrade also rolls the services; pin it to avoid that.
	// It is also the app.kubernetes.io/version label, so at most 63 characters
	// that begin and end with a letter or digit.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`
	Version string `json:"version,omitempty"`

	// imageRepository is the registry path of the service images:
	// <imageRepository>/shopstack-<service>:<version>.
	// +optional
	// +kubebuilder:default="ghcr.io/shopstack"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9._:]*[a-z0-9])?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$`
	ImageRepository string `json:"imageRepository,omitempty"`

	// imagePullPolicy of every container of the Shop.
	// +optional
	// +kubebuilder:default=IfNotPresent
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// imagePullSecrets are Secrets in the Shop's namespace used to pull every image.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// services configures the four services; each is optional and has the same shape.
	// +optional
	// +kubebuilder:default={}
	Services ServicesSpec `json:"services,omitempty"`

	// scheduling is applied to every pod of the Shop.
	// +optional
	Scheduling SchedulingSpec `json:"scheduling,omitempty"`

	// postgres configures the replicated Postgres data tier.
	// +optional
	// +kubebuilder:default={}
	Postgres PostgresSpec `json:"postgres,omitempty"`

	// redis configures Redis and its Sentinels.
	// +optional
	// +kubebuilder:default={}
	Redis RedisSpec `json:"redis,omitempty"`

	// security configures the mesh, certificates and network policies.
	// +optional
	// +kubebuilder:default={}
	Security SecuritySpec `json:"security,omitempty"`

	// gateway exposes the Shop through a Gateway API Gateway. Without hosts no
	// Gateway is created and the Shop is reachable only inside the cluster.
	// +optional
	// +kubebuilder:default={}
	Gateway GatewaySpec `json:"gateway,omitempty"`

	// availability configures how pods spread across failure domains.
	// +optional
	// +kubebuilder:default={}
	Availability AvailabilitySpec `json:"availability,omitempty"`

	// deletionPolicy: Retain keeps PersistentVolumeClaims and credentials Secrets
	// when the Shop is deleted (a Shop created again with the same name adopts
	// them); Delete removes them.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// ServicesSpec configures each of the four services.
type ServicesSpec struct {
	// user issues accounts and tokens.
	// +optional
	User *ServiceSpec `json:"user,omitempty"`
	// order runs the order saga.
	// +optional
	Order *ServiceSpec `json:"order,omitempty"`
	// payment charges and refunds.
	// +optional
	Payment *ServiceSpec `json:"payment,omitempty"`
	// inventory holds the catalog and stock reservations.
	// +optional
	Inventory *ServiceSpec `json:"inventory,omitempty"`
}

// Get returns the configuration of one service, or nil when it is not set.
func (s *ServicesSpec) Get(name ServiceName) *ServiceSpec {
	switch name {
	case ServiceUser:
		return s.User
	case ServiceOrder:
		return s.Order
	case ServicePayment:
		return s.Payment
	case ServiceInventory:
		return s.Inventory
	}
	return nil
}

// ServiceSpec configures one service.
type ServiceSpec struct {
	// replicas is the fixed number of pods when autoscaling is absent. Default 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// autoscaling turns on a HorizontalPodAutoscaler; replicas is then ignored and
	// the operator leaves the Deployment's replica count to the autoscaler.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// resources of the service container. Default: requests cpu 100m, memory
	// 64Mi; limits memory 256Mi.
	// +optional
	Resources *Resources `json:"resources,omitempty"`
}

// Resources are a container's CPU and memory requests and limits.
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.cpu) || !has(self.limits.cpu) || quantity(string(self.requests.cpu)).compareTo(quantity(string(self.limits.cpu))) <= 0",message="the CPU request must not exceed the CPU limit",fieldPath=".requests.cpu"
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.memory) || !has(self.limits.memory) || quantity(string(self.requests.memory)).compareTo(quantity(string(self.limits.memory))) <= 0",message="the memory request must not exceed the memory limit",fieldPath=".requests.memory"
type Resources struct {
	// requests is what the scheduler reserves.
	// +optional
	Requests *ResourceAmounts `json:"requests,omitempty"`
	// limits is the most the container may use.
	// +optional
	Limits *ResourceAmounts `json:"limits,omitempty"`
}

// ResourceAmounts is an amount of CPU and memory.
type ResourceAmounts struct {
	// cpu, for example 100m.
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// memory, for example 64Mi.
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// AutoscalingSpec configures a HorizontalPodAutoscaler on CPU utilisation.
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="minReplicas (default 2) must not be greater than maxReplicas",fieldPath=".minReplicas"
type AutoscalingSpec struct {
	// minReplicas is the lower bound.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MinReplicas int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the upper bound.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxReplicas int32 `json:"maxReplicas"`

	// targetCPUUtilizationPercentage is the average CPU use, in percent of the
	// request, the autoscaler aims for.
	// +optional
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetCPUUtilizationPercentage int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// SchedulingSpec is applied to every pod of the Shop.
type SchedulingSpec struct {
	// nodeSelector restricts pods to nodes with these labels.
	// +optional
	// Keys and values must be valid label keys and values (checked by the
	// operator, which reports a bad one in the Degraded condition).
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations let pods run on tainted nodes.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.operator) || t.operator != 'Exists' || !has(t.value) || t.value == '')",message="a toleration with operator Exists must not have a value"
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.operator) || t.operator in ['Exists', 'Equal'])",message="operator must be Exists or Equal"
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// priorityClassName of every pod.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// StorageSpec sizes a persistent volume. The size may grow but never shrink,
// and the storage class cannot change after creation.
// +kubebuilder:validation:XValidation:rule="quantity(string(self.size)).isGreaterThan(quantity('0'))",message="size must be greater than zero",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="quantity(string(self.size)).isInteger()",message="size must be a whole number of bytes, such as 10Gi",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0",message="size may grow but never shrink",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storageClassName is immutable",fieldPath=".storageClassName"
type StorageSpec struct {
	// size of each volume, for example 10Gi. It may grow (the volumes are
	// expanded, which their StorageClass must allow) but never shrink.
	// +required
	Size resource.Quantity `json:"size"`

	// storageClassName of the volumes; unset uses the cluster's default class.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// PostgresSpec configures the Postgres data tier.
// +kubebuilder:validation:XValidation:rule="!has(self.synchronousStandbys) || self.synchronousStandbys < self.instances",message="synchronousStandbys must be less than instances",fieldPath=".synchronousStandbys"
type PostgresSpec struct {
	// instances is the number of Postgres servers: one primary, the rest
	// streaming standbys. 1 to 9, default 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	Instances int32 `json:"instances,omitempty"`

	// image of the Postgres container; unset uses the official postgres image.
	// +optional
	Image Image `json:"image,omitempty"`

	// storage of each instance.
	// +optional
	// +kubebuilder:default={size: "10Gi"}
	Storage *StorageSpec `json:"storage,omitempty"`

	// synchronousStandbys is how many standbys confirm each commit. Unset means
	// 1 when instances > 1, else 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=8
	SynchronousStandbys *int32 `json:"synchronousStandbys,omitempty"`

	// failoverAfterSeconds is how long the primary may be unreachable before a standby is promoted.
	// +optional
	// +kubebuilder:default=15
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=3600
	FailoverAfterSeconds int32 `json:"failoverAfterSeconds,omitempty"`
}

// RedisSpec configures Redis: one master, replicas, and a Sentinel beside each.
type RedisSpec struct {
	// replicas is the number of Redis servers, master included. 1 to 9, default 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	Replicas int32 `json:"replicas,omitempty"`

	// image of the Redis and Sentinel containers; unset uses the official redis image.
	// +optional
	Image Image `json:"image,omitempty"`

	// storage of each Redis server.
	// +optional
	// +kubebuilder:default={size: "1Gi"}
	Storage *StorageSpec `json:"storage,omitempty"`
}

// IssuerReference points at a cert-manager Issuer or ClusterIssuer.
type IssuerReference struct {
	// name of the issuer.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// kind is Issuer (in the Shop's namespace) or ClusterIssuer.
	// +optional
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	Kind string `json:"kind,omitempty"`

	// group of the issuer.
	// +optional
	// +kubebuilder:default="cert-manager.io"
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group,omitempty"`
}

// SecuritySpec configures mTLS, certificates and network policies.
type SecuritySpec struct {
	// mesh: none (the services do mTLS and enforce the call graph themselves) or
	// istio (sidecars do mTLS; AuthorizationPolicies enforce the call graph).
	// +optional
	// +kubebuilder:default=none
	Mesh MeshMode `json:"mesh,omitempty"`

	// issuerRef is the cert-manager issuer of every certificate. Omitted: the
	// operator bootstraps a CA Issuer of the Shop's own.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// networkPolicies turns the default-deny and call-graph NetworkPolicies on.
	// +optional
	// +kubebuilder:default=true
	NetworkPolicies *bool `json:"networkPolicies,omitempty"`

	// trustDomain of the SPIFFE IDs in the service certificates.
	// +optional
	// +kubebuilder:default="cluster.local"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	TrustDomain string `json:"trustDomain,omitempty"`
}

// RateLimitSpec is a per-client token bucket.
type RateLimitSpec struct {
	// requestsPerSecond refills the bucket.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	RequestsPerSecond int32 `json:"requestsPerSecond,omitempty"`

	// burst is the bucket's size.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Burst int32 `json:"burst,omitempty"`
}

// GatewaySpec exposes the Shop to end users.
// +kubebuilder:validation:XValidation:rule="!has(self.hosts) || size(self.hosts) == 0 || !self.hosts[0].startsWith('*')",message="the first host names the Shop's URL and token issuer, so it must not be a wildcard",fieldPath=".hosts"
type GatewaySpec struct {
	// className is the GatewayClass of the Gateway (istio, envoy-gateway, cilium, ...).
	// +optional
	// +kubebuilder:default=istio
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClassName string `json:"className,omitempty"`

	// hosts served by the gateway. Empty: no Gateway is created.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	Hosts []Hostname `json:"hosts,omitempty"`

	// rateLimit per client, enforced by the services.
	// +optional
	// +kubebuilder:default={}
	RateLimit RateLimitSpec `json:"rateLimit,omitempty"`

	// allowedSourceRanges limits who may reach the gateway. Empty: everyone.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	AllowedSourceRanges []CIDR `json:"allowedSourceRanges,omitempty"`
}

// AvailabilitySpec configures spreading.
type AvailabilitySpec struct {
	// spreadAcross is a soft preference (ScheduleAnyway), so one node still works.
	// +optional
	// +kubebuilder:default=zone
	SpreadAcross SpreadTopology `json:"spreadAcross,omitempty"`
}

// ServiceStatus reports one service's replicas.
type ServiceStatus struct {
	// readyReplicas counts pods passing their readiness probe.
	ReadyReplicas int32 `json:"readyReplicas"`
	// desiredReplicas is what the Deployment (or its autoscaler) asks for.
	DesiredReplicas int32 `json:"desiredReplicas"`
}

// PostgresStatus reports the Postgres tier.
type PostgresStatus struct {
	// primary is the pod that accepts writes.
	// +optional
	Primary string `json:"primary,omitempty"`
	// readyInstances counts ready Postgres pods.
	ReadyInstances int32 `json:"readyInstances"`
	// timeline is the primary's timeline; it grows with each failover.
	// +optional
	Timeline int64 `json:"timeline,omitempty"`
}

// RedisStatus reports the Redis tier.
type RedisStatus struct {
	// master is the pod that accepts writes.
	// +optional
	Master string `json:"master,omitempty"`
	// readyReplicas counts ready Redis pods.
	ReadyReplicas int32 `json:"readyReplicas"`
}

// ShopStatus is the observed state of a Shop.
type ShopStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Progressing, Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// services reports each service's replicas.
	// +optional
	Services map[ServiceName]ServiceStatus `json:"services,omitempty"`

	// servicesReady counts the services with every desired replica ready, as "N/4".
	// +optional
	ServicesReady string `json:"servicesReady,omitempty"`

	// postgres reports the Postgres tier.
	// +optional
	Postgres PostgresStatus `json:"postgres,omitempty"`

	// redis reports the Redis tier.
	// +optional
	Redis RedisStatus `json:"redis,omitempty"`

	// gatewayURL is where end users reach the Shop.
	// +optional
	GatewayURL string `json:"gatewayURL,omitempty"`
}

// Shop is one e-commerce stack: four services, their security and their data tier.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=shop,categories=shopstack
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Services",type=string,JSONPath=`.status.servicesReady`
// +kubebuilder:printcolumn:name="Primary",type=string,JSONPath=`.status.postgres.primary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 30",message="metadata.name must be at most 30 characters so that every child's name fits in 63"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must start with a letter and contain only lowercase letters, digits and '-' (it names Services)"
type Shop struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Shop.
	// +optional
	// +kubebuilder:default={}
	Spec ShopSpec `json:"spec,omitempty"`

	// status is what the operator observed.
	// +optional
	Status ShopStatus `json:"status,omitempty"`
}

// ShopList is a list of Shops.
// +kubebuilder:object:root=true
type ShopList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Shop `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Shop{}, &ShopList{})
}
