#!/usr/bin/env bash
# Brings up the local single-node Kubernetes cluster as processes on this
# machine (no containers around the control plane, no kind, no Docker):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd,
# kubelet, kube-proxy, kube-router (NetworkPolicy), metrics-server, a hostPath
# volume provisioner and the cert-manager controllers; CoreDNS runs as a pod.
# See hack/local-cluster/README.md. Needs root.
#
#   hack/local-cluster/up.sh            build what is missing, start, wait until usable
#   hack/local-cluster/up.sh --status   exit 0: up; 1: none of it runs, nothing left over; 2: partly up,
#                                       or not answering; 3: none of it runs, leftovers of an earlier run
#
# Already up: says so and exits 0. Leftovers of an earlier run that was not
# taken down are cleaned up first (down.sh).
set -euo pipefail
# shellcheck source=hack/local-cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
started_at=$SECONDS

if [[ "${1:-}" == --status ]]; then
  n=0
  for c in "${COMPONENTS[@]}"; do [[ -z "$(pid_of "$c")" ]] || n=$((n + 1)); done
  if ((n == 0)); then
    leftovers && exit 3
    exit 1
  fi
  ((n == ${#COMPONENTS[@]})) || exit 2
  cp="$("$ROOT/hack/control-plane.sh" --check 2>/dev/null)" || exit 2
  KUBECTL="$cp/kubectl"
  kq get --raw /readyz >/dev/null 2>&1 || exit 2
  exit 0
fi
[[ $# == 0 ]] || die "usage: up.sh [--status]"

[[ "$(uname -s)" == Linux ]] || die "the local cluster runs on Linux only"
[[ "$(id -u)" == 0 ]] || die "run as root (it starts containerd, the kubelet and changes iptables)"

# ---------------------------------------------------------------- already up?
running=() stopped=()
for c in "${COMPONENTS[@]}"; do
  if [[ -n "$(pid_of "$c")" ]]; then running+=("$c"); elif [[ -f "$STATE/pids/$c.pid" ]]; then stopped+=("$c"); fi
done
if ((${#running[@]} == ${#COMPONENTS[@]})); then
  KUBECTL="$(kubectl_bin)"
  if kq get --raw /readyz >/dev/null 2>&1; then
    log "the cluster is already up (state in $STATE)"
    log "  export KUBECONFIG=$ADMIN_KUBECONFIG"
    exit 0
  fi
  die "every component runs but the API server does not answer; see $STATE/logs/, or run hack/local-cluster/down.sh"
fi
if ((${#running[@]} > 0)); then
  die "the cluster is partly up (running: ${running[*]}; not running: ${stopped[*]:-none}); run hack/local-cluster/down.sh first"
fi
# Any other pid file (a component of an older version of this script) is a
# leftover too.
if ((${#stopped[@]} > 0)) || leftovers; then
  log "leftovers of an earlier run found; cleaning them up first"
  "$HERE/down.sh"
fi

# ------------------------------------------------------------- prerequisites
foreign="$(foreign_node_agents)"
if [[ -n "$foreign" ]]; then
  die "another Kubernetes node runs on this machine (${foreign//$'\n'/, }); its iptables chains and kubelet folder would clash with this cluster's"
fi
missing_pkgs=()
need() { # need COMMAND APT-PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing_pkgs+=("$2")
}
need containerd containerd
need containerd-shim-runc-v2 containerd
need ctr containerd
need runc runc
need iptables iptables
need ipset ipset
need conntrack conntrack
need ip iproute2
need setsid util-linux
need mount mount
if ((${#missing_pkgs[@]} > 0)); then
  mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
  die "missing programs; install them with: apt-get install -y ${missing_pkgs[*]}"
fi
containerd_version="$(containerd --version | awk '{print $3}')"
containerd_version="${containerd_version#v}"
IFS=. read -r cd_major cd_minor _ <<<"${containerd_version%%[~+-]*}"
if ! [[ "$cd_major" =~ ^[0-9]+$ && "$cd_minor" =~ ^[0-9]+$ ]] || ((cd_major < 1 || (cd_major == 1 && cd_minor < 6))); then
  die "containerd 1.6 or newer needed, found '$containerd_version'; apt-get install containerd"
fi
command -v go >/dev/null || die "the go command is missing; install Go first"

# The cluster's address ranges must be free: routes for them would be
# replaced, and an address in them would collide with a pod or a Service.
for net in "$SERVICE_CIDR" "$CLUSTER_CIDR"; do
  taken="$(ip -4 route show table all root "$net" 2>/dev/null | head -n 3)"
  [[ -z "$taken" ]] || die "this machine already routes addresses of $net (${taken//$'\n'/; }); the local cluster needs that range for itself"
done
if ip -4 -o addr show 2>/dev/null | awk '{print $4}' | grep -qF "$NODE_IP/"; then
  die "$NODE_IP is already an address of this machine; the local cluster's node address must be its own"
fi

# kube-proxy and kube-router take over KUBE-* chains and ipsets by name: ones
# that are here already are another node's (one that is stopped now).
other_node="$({ list_chains iptables; list_chains ip6tables; } | awk '$2 ~ /^KUBE-/ {print $2}' | sort -u | head -n 5 | tr '\n' ' ')$(list_ipsets | head -n 5 | tr '\n' ' ')"
if [[ -n "$other_node" ]]; then
  die "iptables chains or ipsets of another Kubernetes node are on this machine (${other_node% }); this cluster's kube-proxy and kube-router would take them over. Remove them (that node's kube-proxy --cleanup, or iptables -X and ipset destroy) or start that node instead"
fi

# ----------------------------------------------------- what the machine had
# Recorded before the first change; see lib.sh.
record_host
if grep -q ' CNI-' "$HOST_SAVED/chains"; then
  log "note: CNI-* chains from before (another container tool's) are left as they are: $(grep -c ' CNI-' "$HOST_SAVED/chains")"
fi

# Kernel: bridged pod traffic must pass iptables (kube-proxy, kube-router),
# and containerd's snapshotter needs overlayfs. A module loaded here is
# unloaded again by down.sh.
if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
  modprobe br_netfilter 2>/dev/null || true
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    die "the br_netfilter kernel module is not available (modprobe br_netfilter failed); Services would not work from pods"
  touch "$HOST_SAVED/br_netfilter.loaded"
fi
if ! grep -qw overlay /proc/filesystems; then
  modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || die "the overlay filesystem is not available (modprobe overlay failed); containerd needs it"
fi
[[ -d /sys/fs/cgroup ]] || die "/sys/fs/cgroup is missing"

# ------------------------------------------------------------------- binaries
CP="$("$ROOT/hack/control-plane.sh")"
BIN="$("$HERE/build.sh")"
KUBECTL="$CP/kubectl"

if [[ -d "$STATE/logs" ]]; then rm -rf "$STATE/logs.prev" && mv "$STATE/logs" "$STATE/logs.prev"; fi
mkdir -p "$STATE"/{bin,config,logs,pids,images,volumes,pod-logs,etcd,containerd,kubelet,cni/networks}
chmod 700 "$STATE"
log "building the cluster's own tools (pki, provisioner, dnscheck)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$STATE/bin/" ./hack/local-cluster/cmd/...)

log "making the pause and CoreDNS images ($PAUSE_IMAGE, $COREDNS_IMAGE)"
(cd "$ROOT" && go run ./hack/images -out "$STATE/images" pause coredns) >"$STATE/logs/images.log" 2>&1 ||
  { tail -n 20 "$STATE/logs/images.log" >&2; die "go run ./hack/images -out $STATE/images pause coredns failed"; }
for f in pause coredns; do
  [[ -f "$STATE/images/$f.tar" ]] || die "hack/images did not write $STATE/images/$f.tar"
done

# ------------------------------------------------------------------- network
# The node address lives on an interface of its own that leads nowhere: a
# bridge without ports (kernels without the dummy driver have bridges too),
# so the address is this machine's alone. The service range and the pod range
# are routed into the same interface: a packet for an address with no
# kube-proxy rule (or no pod) is dropped there instead of following the
# default route out of the machine.
log "network: $DUMMY_IF $NODE_IP, services $SERVICE_CIDR, pods $POD_CIDR on $BRIDGE_IF"
ip link add "$DUMMY_IF" type bridge
ip addr add "$NODE_IP/32" dev "$DUMMY_IF"
ip link set "$DUMMY_IF" up
ip route replace "$SERVICE_CIDR" dev "$DUMMY_IF"
ip route replace "$CLUSTER_CIDR" dev "$DUMMY_IF"

forwarding_before="$(awk '$1 == "/proc/sys/net/ipv4/ip_forward" {print $2}' "$HOST_SAVED/sysctls")"

# Pods may talk to each other, to Services and to the API server, never past
# this machine. The mangle table runs before the filter rules of kube-proxy
# and kube-router, so nothing they add can open a way around these chains.
ipt() { "$1" -w 5 "${@:2}"; }
chain() { # chain IPTABLES TABLE NAME HOOK: an empty chain NAME, jumped to first from HOOK
  ipt "$1" -t "$2" -N "$3" 2>/dev/null || ipt "$1" -t "$2" -F "$3"
  ipt "$1" -t "$2" -C "$4" -j "$3" 2>/dev/null || ipt "$1" -t "$2" -I "$4" 1 -j "$3"
}
families=(iptables)
usable_ip6tables && families+=(ip6tables)
for v in "${families[@]}"; do
  # Whatever a pod sends that would be forwarded out of the bridge to
  # another interface is dropped, and nothing is forwarded into the bridge
  # from outside.
  chain "$v" mangle "$CONTAIN_CHAIN" FORWARD
  ipt "$v" -t mangle -A "$CONTAIN_CHAIN" -i "$BRIDGE_IF" ! -o "$BRIDGE_IF" -j DROP
  ipt "$v" -t mangle -A "$CONTAIN_CHAIN" ! -i "$BRIDGE_IF" -o "$BRIDGE_IF" -j DROP
  # IPv4 forwarding was off before: it stays off for every other interface.
  # (Frames bridged on other bridges pass: with bridge-nf-call-iptables
  # they show here too.)
  if [[ "$v" == iptables && "$forwarding_before" != 1 ]]; then
    ipt "$v" -t mangle -A "$CONTAIN_CHAIN" ! -i "$BRIDGE_IF" ! -o "$BRIDGE_IF" -m physdev ! --physdev-is-bridged -j DROP
  fi
  # What pods send to this machine itself: answers to connections the host
  # opened (probes, logs, exec) and the API server (the kubernetes
  # Service), nothing else. Any other service of the host, on any of its
  # addresses, is out of their reach, so none can relay them outside.
  chain "$v" mangle "$HOST_IN_CHAIN" INPUT
  ipt "$v" -t mangle -A "$HOST_IN_CHAIN" ! -i "$BRIDGE_IF" -j RETURN
  ipt "$v" -t mangle -A "$HOST_IN_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  if [[ "$v" == iptables ]]; then
    ipt "$v" -t mangle -A "$HOST_IN_CHAIN" -d "$NODE_IP/32" -p tcp --dport "$APISERVER_PORT" -j RETURN
  fi
  ipt "$v" -t mangle -A "$HOST_IN_CHAIN" -j DROP
done
# The node address and the cluster ranges answer this machine and its pods
# only: whatever arrives for them on another interface is dropped, even where
# a neighbour routes them here.
chain iptables mangle "$CONTAIN_IN_CHAIN" PREROUTING
for dev in lo "$BRIDGE_IF" "$DUMMY_IF"; do
  ipt iptables -t mangle -A "$CONTAIN_IN_CHAIN" -i "$dev" -j RETURN
done
for net in "$NODE_IP/32" "$SERVICE_CIDR" "$CLUSTER_CIDR"; do
  ipt iptables -t mangle -A "$CONTAIN_IN_CHAIN" -d "$net" -j DROP
done
# Forwarding only now that the chains are in place.
echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables

# ------------------------------------------------------------------------ PKI
"$STATE/bin/pki" -dir "$PKI" -kubeconfigs "$KUBECONFIGS" -node "$NODE_NAME" -ip "$NODE_IP" \
  -service-ip "$KUBERNETES_SERVICE_IP" -server "$APISERVER_URL"
cp "$KUBECONFIGS/admin.kubeconfig" "$ADMIN_KUBECONFIG"
chmod 600 "$ADMIN_KUBECONFIG"

# --------------------------------------------------------------------- config
CFG="$STATE/config"
mkdir -p "$CFG/cni"
cat >"$CFG/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$BIN/cni"
    conf_dir = "$CFG/cni"
    max_conf_num = 1
EOF

cat >"$CFG/cni/10-shopstack.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "shopstack",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE_IF",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/networks",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [
          {"dst": "$CLUSTER_CIDR", "gw": "$POD_GATEWAY"},
          {"dst": "$SERVICE_CIDR", "gw": "$POD_GATEWAY"}
        ]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# Pods with dnsPolicy Default get this file too: only the cluster's DNS.
echo "nameserver $DNS_SERVICE_IP" >"$CFG/resolv.conf"

cat >"$CFG/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
podLogsDir: $STATE/pod-logs
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: $CFG/resolv.conf
hairpinMode: hairpin-veth
serializeImagePulls: false
# Images are imported, never pulled: garbage collecting one would lose it.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
rotateCertificates: false
serverTLSBootstrap: false
maxPods: 110
EOF

cat >"$CFG/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIGS/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
mode: iptables
clusterCIDR: $CLUSTER_CIDR
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# Zero: leave the host's conntrack table size and timeouts as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
nodePortAddresses: ["$NODE_IP/32"]
iptables: {masqueradeAll: false, localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 1s}
EOF

# The restricted Pod Security Standard is enforced where a namespace asks
# for it; every other namespace gets at least baseline: no privileged, host
# network or host path pod anywhere, so no pod can step around the
# containment above.
cat >"$CFG/admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: baseline, enforce-version: latest, warn: restricted, warn-version: latest, audit: restricted, audit-version: latest}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}
EOF

# ------------------------------------------------------------- control plane
etcd_healthy() { # GET /health on the client URL, with bash alone
  local hostport="${ETCD_CLIENT_URL#http://}" reply
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" || return 1
  printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3
  reply="$(timeout 5 cat <&3)"
  exec 3<&-
  [[ "$reply" == *'"health":"true"'* ]]
}
log "starting etcd"
start etcd "$CP/etcd" --name shopstack --data-dir "$STATE/etcd" \
  --listen-client-urls "$ETCD_CLIENT_URL" --advertise-client-urls "$ETCD_CLIENT_URL" \
  --listen-peer-urls "$ETCD_PEER_URL" --initial-advertise-peer-urls "$ETCD_PEER_URL" \
  --initial-cluster "shopstack=$ETCD_PEER_URL" --initial-cluster-state new \
  --listen-metrics-urls "" --log-level warn
wait_for 60 "etcd" etcd etcd_healthy

log "starting kube-apiserver on $APISERVER_URL"
start kube-apiserver "$CP/kube-apiserver" \
  --etcd-servers "$ETCD_CLIENT_URL" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --admission-control-config-file "$CFG/admission.yaml" \
  --allow-privileged=false \
  --enable-aggregator-routing=true \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --profiling=false --v=1
wait_for 120 "the API server" kube-apiserver kq get --raw /readyz

log "applying RBAC, CoreDNS, the metrics Service, StorageClass $STORAGE_CLASS, cert-manager CRDs"
ca_bundle="$(base64 -w0 <"$PKI/ca.crt")"
sed -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" -e "s|@CA_BUNDLE@|$ca_bundle|g" \
  -e "s|@STORAGE_CLASS@|$STORAGE_CLASS|g" -e "s|@PROVISIONER_NAME@|$PROVISIONER_NAME|g" \
  "$HERE/manifests/cluster.yaml" >"$CFG/cluster.yaml"
sed -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" \
  "$HERE/manifests/coredns.yaml" >"$CFG/coredns.yaml"
k apply --server-side --force-conflicts -f "$HERE/manifests/rbac.yaml" -f "$CFG/cluster.yaml" -f "$CFG/coredns.yaml" >/dev/null
k apply --server-side --force-conflicts -f "$ROOT/config/thirdparty/cert-manager/" >/dev/null

log "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$KUBECONFIGS/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$KUBECONFIGS/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$KUBECONFIGS/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --cert-dir "$STATE/kube-controller-manager" \
  --leader-elect=false --use-service-account-credentials=true \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --allocate-node-cidrs=true --cluster-cidr "$CLUSTER_CIDR" --node-cidr-mask-size 24 \
  --v=1
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig "$KUBECONFIGS/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$KUBECONFIGS/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$KUBECONFIGS/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --v=1

# ----------------------------------------------------------------------- node
log "starting containerd ($CONTAINERD_SOCK)"
# Pulls are not part of this cluster: every image is imported. The proxy
# variables send any pull attempt to a closed local port, so it fails at once
# without a name lookup or a packet leaving the machine.
HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 \
  https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy= \
  start containerd "$(command -v containerd)" --config "$CFG/containerd.toml"
wait_for 60 "containerd" containerd timeout 10 ctr -a "$CONTAINERD_SOCK" version
timeout 300 ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "$STATE/images/pause.tar" >/dev/null
timeout 300 ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "$STATE/images/coredns.tar" >/dev/null

log "starting kubelet (node $NODE_NAME)"
start kubelet "$BIN/kubelet" --config "$CFG/kubelet.yaml" \
  --kubeconfig "$KUBECONFIGS/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
wait_for 90 "node $NODE_NAME to be Ready" kubelet \
  kq wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s

log "starting kube-proxy, kube-router, metrics-server, the volume provisioner and cert-manager"
start kube-proxy "$BIN/kube-proxy" --config "$CFG/kube-proxy.yaml"
start kube-router "$BIN/kube-router" --kubeconfig "$KUBECONFIGS/kube-router.kubeconfig" \
  --hostname-override "$NODE_NAME" \
  --run-firewall=true --run-router=false --run-service-proxy=false \
  --enable-cni=false --enable-pod-egress=false --health-port 0 --metrics-port 0
start metrics-server "$BIN/metrics-server" \
  --kubeconfig "$KUBECONFIGS/metrics-server.kubeconfig" \
  --authentication-kubeconfig "$KUBECONFIGS/metrics-server.kubeconfig" \
  --authorization-kubeconfig "$KUBECONFIGS/metrics-server.kubeconfig" \
  --bind-address "$NODE_IP" --secure-port 4443 \
  --tls-cert-file "$PKI/metrics-server-serving.crt" --tls-private-key-file "$PKI/metrics-server-serving.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --kubelet-use-node-status-port --metric-resolution 15s
start provisioner "$STATE/bin/provisioner" --kubeconfig "$KUBECONFIGS/provisioner.kubeconfig" \
  --name "$PROVISIONER_NAME" --dir "$STATE/volumes" --node "$NODE_NAME"
start cert-manager "$BIN/cert-manager-controller" --kubeconfig "$KUBECONFIGS/cert-manager.kubeconfig" \
  --leader-election-namespace kube-system --cluster-resource-namespace cert-manager

# ---------------------------------------------------------------------- ready
wait_for 90 "the CoreDNS pod to be ready" - \
  kq -n kube-system wait --for=condition=Available deployment/coredns --timeout=2s
wait_for 60 "CoreDNS to answer kubernetes.default.svc.cluster.local" - \
  "$STATE/bin/dnscheck" -server "$DNS_SERVICE_IP:53" kubernetes.default.svc.cluster.local.
wait_for 60 "the cert-manager controllers to hold their Lease" cert-manager \
  kq -n kube-system get lease cert-manager-controller
wait_for 180 "the metrics API (APIService v1beta1.metrics.k8s.io Available)" metrics-server \
  kq wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=2s
"$HERE/smoke.sh" cert-manager storage

for c in "${COMPONENTS[@]}"; do
  [[ -n "$(pid_of "$c")" ]] || die "$c exited; see $STATE/logs/$c.log and run hack/local-cluster/down.sh"
done

cat >&2 <<EOF
local-cluster: up in $((SECONDS - started_at))s. Node $NODE_NAME, API server $APISERVER_URL.

  export KUBECONFIG=$ADMIN_KUBECONFIG
  export PATH=$CP:\$PATH          # kubectl $("$KUBECTL" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -n1)
  kubectl get nodes

  containerd socket:  $CONTAINERD_SOCK  (ctr -a ... -n k8s.io images import IMAGE.tar)
  DNS Service:        $DNS_SERVICE_IP (kube-system/kube-dns), StorageClass: $STORAGE_CLASS (default)
  logs:               $STATE/logs/<component>.log
  stop:               hack/local-cluster/down.sh   (--purge also removes $STATE)
EOF
