package builder

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

// The official postgres and redis images run as these users; images built
// for the local cluster keep the same IDs so one pod spec runs either.
const (
	PostgresUID int64 = 999
	RedisUID    int64 = 999
)

// RedisMasterName is the name Sentinel monitors the master under.
const RedisMasterName = "shopstack"

// Paths inside the data-tier pods.
const (
	pgDataMount      = "/var/lib/postgresql/data"
	pgData           = pgDataMount + "/pgdata"
	pgConfigMount    = "/etc/shopstack/postgres-config"
	credentialsMount = "/etc/shopstack/credentials"
	redisConfMount   = "/etc/shopstack/redis-conf"
	redisScriptMount = "/etc/shopstack/redis-scripts"
	redisDataMount   = "/data"
)

// PostgresInstances is spec.postgres.instances with its default.
func PostgresInstances(shop *shopv1.Shop) int32 {
	if shop.Spec.Postgres.Instances == 0 {
		return 3
	}
	return shop.Spec.Postgres.Instances
}

// SynchronousStandbys is spec.postgres.synchronousStandbys with its default.
func SynchronousStandbys(shop *shopv1.Shop) int32 {
	if s := shop.Spec.Postgres.SynchronousStandbys; s != nil {
		return *s
	}
	if PostgresInstances(shop) > 1 {
		return 1
	}
	return 0
}

// RedisReplicas is spec.redis.replicas with its default.
func RedisReplicas(shop *shopv1.Shop) int32 {
	if shop.Spec.Redis.Replicas == 0 {
		return 3
	}
	return shop.Spec.Redis.Replicas
}

// PostgresPodName is the name of instance i.
func PostgresPodName(shop *shopv1.Shop, i int32) string {
	return fmt.Sprintf("%s-%d", Name(shop, ComponentPostgres), i)
}

// RedisPodName is the name of Redis server i.
func RedisPodName(shop *shopv1.Shop, i int32) string {
	return fmt.Sprintf("%s-%d", Name(shop, ComponentRedis), i)
}

func podFQDN(shop *shopv1.Shop, component, pod string) string {
	return fmt.Sprintf("%s.%s.%s.svc.cluster.local", pod, Name(shop, component), shop.Namespace)
}

// RedisSentinelAddrs lists every Sentinel's stable DNS name and port.
func RedisSentinelAddrs(shop *shopv1.Shop) string {
	var addrs []string
	for i := range RedisReplicas(shop) {
		addrs = append(addrs, fmt.Sprintf("%s:%d", podFQDN(shop, ComponentRedis, RedisPodName(shop, i)), callgraph.SentinelPort.Number))
	}
	return strings.Join(addrs, ",")
}

func headlessService(shop *shopv1.Shop, component string, ports ...callgraph.Port) *corev1.Service {
	return clusterService(shop, Name(shop, component), component, corev1.ClusterIPNone, SelectorLabels(shop, component), ports...)
}

func clusterService(shop *shopv1.Shop, name, component, clusterIP string, selector map[string]string, ports ...callgraph.Port) *corev1.Service {
	s := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: ObjectMeta(shop, name, component),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector,
		},
	}
	if clusterIP == corev1.ClusterIPNone {
		s.Spec.ClusterIP = corev1.ClusterIPNone
		s.Spec.PublishNotReadyAddresses = true
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: p.Name, Port: p.Number, TargetPort: intstr.FromString(p.Name), Protocol: corev1.ProtocolTCP})
	}
	return s
}

// primarySelector selects the pod serving writes. Until failover moves a
// role label, that is always the first instance.
func primarySelector(shop *shopv1.Shop, component, pod string) map[string]string {
	s := SelectorLabels(shop, component)
	s["statefulset.kubernetes.io/pod-name"] = pod
	return s
}

// PostgresServices are the headless Service that gives each instance a stable
// name, -rw (the primary) and -ro (every instance).
func PostgresServices(shop *shopv1.Shop) []*corev1.Service {
	return []*corev1.Service{
		headlessService(shop, ComponentPostgres, callgraph.PostgresPort),
		clusterService(shop, Name(shop, "postgres-rw"), ComponentPostgres, "", primarySelector(shop, ComponentPostgres, PostgresPodName(shop, 0)), callgraph.PostgresPort),
		clusterService(shop, Name(shop, "postgres-ro"), ComponentPostgres, "", SelectorLabels(shop, ComponentPostgres), callgraph.PostgresPort),
	}
}

// RedisServices are the headless Service, -redis-master and -redis-sentinel.
func RedisServices(shop *shopv1.Shop) []*corev1.Service {
	return []*corev1.Service{
		headlessService(shop, ComponentRedis, callgraph.RedisPort, callgraph.SentinelPort),
		clusterService(shop, Name(shop, "redis-master"), ComponentRedis, "", primarySelector(shop, ComponentRedis, RedisPodName(shop, 0)), callgraph.RedisPort),
		clusterService(shop, Name(shop, "redis-sentinel"), ComponentRedis, "", SelectorLabels(shop, ComponentRedis), callgraph.SentinelPort),
	}
}

func volumeClaim(shop *shopv1.Shop, component string, storage *shopv1.StorageSpec, def string) corev1.PersistentVolumeClaim {
	size := resource.MustParse(def)
	var class *string
	if storage != nil {
		if !storage.Size.IsZero() {
			size = storage.Size
		}
		class = storage.StorageClassName
	}
	return corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   "data",
			Labels: Labels(shop, component),
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}

// pvcRetention keeps PersistentVolumeClaims under deletionPolicy Retain and
// whenever the StatefulSet scales down.
func pvcRetention(shop *shopv1.Shop) *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	whenDeleted := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if shop.Spec.DeletionPolicy == shopv1.DeletionDelete {
		whenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	return &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: whenDeleted,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
}

// PostgresConfigMapName holds pg_hba.conf and the bootstrap scripts.
func PostgresConfigMapName(shop *shopv1.Shop) string { return Name(shop, "postgres-config") }

// PostgresConfigMap holds the host-based authentication rules (TLS and
// SCRAM only from the network), the script that creates each service's role
// and database from the credentials Secret on first start, and the start
// script that clones standbys from the primary.
func PostgresConfigMap(shop *shopv1.Shop) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: ObjectMeta(shop, PostgresConfigMapName(shop), ComponentPostgres),
		Data: map[string]string{
			"pg_hba.conf":     pgHBA,
			"10-shopstack.sh": pgInitScript,
			"start.sh":        pgStartScript,
		},
	}
}

const pgHBA = `# Managed by shopstack. Local socket for the entrypoint; TLS with SCRAM from the network.
local   all          all                        peer
hostssl replication  replication  all           scram-sha-256
hostssl all          all          all           scram-sha-256
`

// pgInitScript runs once, when the primary initialises its data directory.
const pgInitScript = `#!/bin/sh
# Managed by shopstack: one role and one database per service, passwords from the credentials Secret.
set -eu
creds=/etc/shopstack/credentials
role() { # role NAME ATTRIBUTES
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=name="$1" --set=pw="$(cat "$creds/$1")" <<SQL
CREATE ROLE :"name" WITH $2 PASSWORD :'pw';
SQL
}
role replication "LOGIN REPLICATION"
role operator "LOGIN"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c 'GRANT pg_monitor TO operator'
for svc in user order payment inventory; do
  role "$svc" "LOGIN"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --set=name="$svc" <<'SQL'
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
`

// pgStartScript starts instance 0 through the image's entrypoint and clones
// every other instance from the primary on its first start.
const pgStartScript = `#!/bin/sh
# Managed by shopstack.
set -eu
ordinal="${HOSTNAME##*-}"
# The standby's primary_conninfo names this file: it is rewritten at every
# start, on the volume, so a recreated pod reconnects.
passfile=/var/lib/postgresql/data/.pgpass
umask 077
printf '*:*:*:replication:%s\n' "$(cat /etc/shopstack/credentials/replication)" > "$passfile"
if [ "$ordinal" != "0" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  until PGPASSFILE="$passfile" pg_basebackup --host "$PRIMARY_HOST" --username replication \
      --pgdata "$PGDATA" --wal-method stream --write-recovery-conf --checkpoint fast \
      "--dbname=sslmode=verify-full sslrootcert=/etc/shopstack/tls/ca.crt"; do
    echo "waiting for the primary $PRIMARY_HOST to clone from"; rm -rf "$PGDATA"/*; sleep 5
  done
  chmod 700 "$PGDATA"
fi
exec docker-entrypoint.sh "$@"
`

// PostgresStatefulSet runs the Postgres instances.
func PostgresStatefulSet(shop *shopv1.Shop) *appsv1.StatefulSet {
	image := string(shop.Spec.Postgres.Image)
	if image == "" {
		image = DefaultPostgresImage
	}
	component := ComponentPostgres
	args := []string{
		"postgres",
		"-c", "listen_addresses=*",
		"-c", "ssl=on",
		"-c", "ssl_cert_file=" + MountTLS + "/tls.crt",
		"-c", "ssl_key_file=" + MountTLS + "/tls.key",
		"-c", "ssl_ca_file=" + MountTLS + "/ca.crt",
		"-c", "hba_file=" + pgConfigMount + "/pg_hba.conf",
		"-c", "password_encryption=scram-sha-256",
		"-c", "wal_level=replica",
		"-c", "hot_standby=on",
		"-c", "max_wal_senders=10",
		"-c", "max_replication_slots=10",
		"-c", "wal_log_hints=on",
	}
	pod := dataPod(shop, component, PostgresUID, 60, CredPostgres, PostgresConfigMapName(shop), "config",
		corev1.Volume{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.Containers = []corev1.Container{{
		Name:            "postgres",
		Image:           image,
		ImagePullPolicy: pullPolicy(shop),
		Command:         []string{"sh", pgConfigMount + "/start.sh"},
		Args:            args,
		Ports:           []corev1.ContainerPort{{Name: callgraph.PostgresPort.Name, ContainerPort: callgraph.PostgresPort.Number, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			{Name: "PGDATA", Value: pgData},
			{Name: "POSTGRES_USER", Value: "postgres"},
			{Name: "POSTGRES_PASSWORD_FILE", Value: credentialsMount + "/" + KeyPGSuperuser},
			{Name: "POSTGRES_INITDB_ARGS", Value: "--auth-local=peer --auth-host=scram-sha-256 --data-checksums"},
			{Name: "PRIMARY_HOST", Value: podFQDN(shop, component, PostgresPodName(shop, 0))},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "data", MountPath: pgDataMount},
			{Name: "tls", MountPath: MountTLS, ReadOnly: true},
			{Name: "credentials", MountPath: credentialsMount, ReadOnly: true},
			{Name: "config", MountPath: pgConfigMount, ReadOnly: true},
			{Name: "config", MountPath: "/docker-entrypoint-initdb.d/10-shopstack.sh", SubPath: "10-shopstack.sh", ReadOnly: true},
			{Name: "run", MountPath: "/var/run/postgresql"},
			{Name: "tmp", MountPath: "/tmp"},
		},
		SecurityContext: RestrictedContainerSecurityContext(),
		StartupProbe:    pgProbe(5, 60),
		ReadinessProbe:  pgProbe(5, 3),
		LivenessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(callgraph.PostgresPort.Name)}},
			PeriodSeconds: 10, FailureThreshold: 6, TimeoutSeconds: 5,
		},
	}}
	applyScheduling(shop, &pod)
	return statefulSet(shop, component, PostgresInstances(shop), pod,
		volumeClaim(shop, component, shop.Spec.Postgres.Storage, "10Gi"))
}

// dataPod is the pod spec both data tiers share: their user, the TLS and
// credentials Secrets, their scripts ConfigMap (mounted as scriptsVolume), a
// scratch /tmp, and extra volumes.
func dataPod(shop *shopv1.Shop, component string, uid, grace int64, creds CredentialKind, configMap, scriptsVolume string, extra ...corev1.Volume) corev1.PodSpec {
	vols := []corev1.Volume{
		secretVolume("tls", Name(shop, component, "tls")),
		secretVolume("credentials", CredentialSecretName(shop, creds)),
		{Name: scriptsVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: configMap}, DefaultMode: ptr.To[int32](0o555),
		}}},
	}
	vols = append(vols, extra...)
	vols = append(vols, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return corev1.PodSpec{
		AutomountServiceAccountToken:  ptr.To(false),
		SecurityContext:               podSecurityContext(uid),
		TerminationGracePeriodSeconds: ptr.To(grace),
		TopologySpreadConstraints:     topologySpread(shop, component),
		Volumes:                       vols,
	}
}

func pgProbe(period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
			Command: []string{"pg_isready", "--host", "/var/run/postgresql", "--username", "postgres"},
		}},
		PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 5,
	}
}

func statefulSet(shop *shopv1.Shop, component string, replicas int32, pod corev1.PodSpec, claim corev1.PersistentVolumeClaim) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: ObjectMeta(shop, Name(shop, component), component),
		Spec: appsv1.StatefulSetSpec{
			Replicas:                             ptr.To(replicas),
			ServiceName:                          Name(shop, component),
			PodManagementPolicy:                  appsv1.OrderedReadyPodManagement,
			Selector:                             &metav1.LabelSelector{MatchLabels: SelectorLabels(shop, component)},
			UpdateStrategy:                       appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			PersistentVolumeClaimRetentionPolicy: pvcRetention(shop),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(shop, component, TierData)},
				Spec:       pod,
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claim},
		},
	}
}

// RedisConfigMapName holds the scripts that write the Redis and Sentinel configuration.
func RedisConfigMapName(shop *shopv1.Shop) string { return Name(shop, "redis-config") }

// RedisConfigMap holds the script an init container runs to write redis.conf
// and sentinel.conf (they hold the replication password, so they are written
// to a memory volume at start rather than stored in a ConfigMap).
func RedisConfigMap(shop *shopv1.Shop) *corev1.ConfigMap {
	quorum := RedisReplicas(shop)/2 + 1
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: ObjectMeta(shop, RedisConfigMapName(shop), ComponentRedis),
		Data: map[string]string{
			"configure.sh": fmt.Sprintf(redisConfigureScript,
				podFQDN(shop, ComponentRedis, RedisPodName(shop, 0)), quorum, Name(shop, ComponentRedis), shop.Namespace),
		},
	}
}

const redisConfigureScript = `#!/bin/sh
# Managed by shopstack: writes redis.conf and sentinel.conf for this pod.
set -eu
creds=/etc/shopstack/credentials
tls=/etc/shopstack/tls
out=/etc/shopstack/redis-conf
me="$HOSTNAME.%[3]s.%[4]s.svc.cluster.local"
first="%[1]s"
common="port 0
tls-cert-file $tls/tls.crt
tls-key-file $tls/tls.key
tls-ca-cert-file $tls/ca.crt
tls-replication yes"
cat > "$out/redis.conf" <<EOF
$common
tls-port 6379
tls-auth-clients optional
aclfile $creds/users.acl
dir /data
appendonly yes
replica-announce-ip $me
masteruser replication
masterauth $(cat "$creds/replication")
EOF
if [ "$me" != "$first" ]; then echo "replicaof $first 6379" >> "$out/redis.conf"; fi
cat > "$out/sentinel.conf" <<EOF
$common
tls-port 26379
tls-auth-clients yes
dir /tmp
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $me
sentinel monitor shopstack $first 6379 %[2]d
sentinel auth-user shopstack sentinel
sentinel auth-pass shopstack $(cat "$creds/sentinel")
sentinel down-after-milliseconds shopstack 5000
sentinel failover-timeout shopstack 60000
EOF
chmod 600 "$out/redis.conf" "$out/sentinel.conf"
`

// RedisStatefulSet runs the Redis servers, each with a Sentinel beside it.
func RedisStatefulSet(shop *shopv1.Shop) *appsv1.StatefulSet {
	image := string(shop.Spec.Redis.Image)
	if image == "" {
		image = DefaultRedisImage
	}
	component := ComponentRedis
	mounts := []corev1.VolumeMount{
		{Name: "tls", MountPath: MountTLS, ReadOnly: true},
		{Name: "credentials", MountPath: credentialsMount, ReadOnly: true},
		{Name: "conf", MountPath: redisConfMount},
		{Name: "tmp", MountPath: "/tmp"},
	}
	container := func(name string, port callgraph.Port, command ...string) corev1.Container {
		return corev1.Container{
			Name:            name,
			Image:           image,
			ImagePullPolicy: pullPolicy(shop),
			Command:         command,
			Ports:           []corev1.ContainerPort{{Name: port.Name, ContainerPort: port.Number, Protocol: corev1.ProtocolTCP}},
			VolumeMounts:    mounts,
			SecurityContext: RestrictedContainerSecurityContext(),
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(port.Name)}},
				PeriodSeconds: 5, FailureThreshold: 3,
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(port.Name)}},
				PeriodSeconds: 10, FailureThreshold: 6,
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
		}
	}
	server := container("redis", callgraph.RedisPort, "redis-server", redisConfMount+"/redis.conf")
	server.VolumeMounts = append(server.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: redisDataMount})
	sentinel := container("sentinel", callgraph.SentinelPort, "redis-sentinel", redisConfMount+"/sentinel.conf")
	sentinel.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	configure := corev1.Container{
		Name:            "configure",
		Image:           image,
		ImagePullPolicy: pullPolicy(shop),
		Command:         []string{"sh", redisScriptMount + "/configure.sh"},
		VolumeMounts:    append(mounts, corev1.VolumeMount{Name: "scripts", MountPath: redisScriptMount, ReadOnly: true}),
		SecurityContext: RestrictedContainerSecurityContext(),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	}
	pod := dataPod(shop, component, RedisUID, 30, CredRedis, RedisConfigMapName(shop), "scripts",
		corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi")),
		}}})
	pod.InitContainers = []corev1.Container{configure}
	pod.Containers = []corev1.Container{server, sentinel}
	applyScheduling(shop, &pod)
	return statefulSet(shop, component, RedisReplicas(shop), pod,
		volumeClaim(shop, component, shop.Spec.Redis.Storage, "1Gi"))
}
