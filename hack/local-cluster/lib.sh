# Shared settings and helpers of hack/local-cluster/{up,down,smoke}.sh.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/hack/local-cluster"
STATE="${SHOPSTACK_CLUSTER_STATE:-/var/lib/shopstack-cluster}"

NODE_NAME="shopstack-node"
NODE_IP="10.250.0.1"                 # on $DUMMY_IF, owned by this machine only
DUMMY_IF="shopstack0"                # a bridge without ports, see up.sh
BRIDGE_IF="cni0"
SERVICE_CIDR="10.96.0.0/16"
KUBERNETES_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"
CLUSTER_CIDR="10.244.0.0/16"
POD_CIDR="10.244.0.0/24"
POD_GATEWAY="10.244.0.1"
APISERVER_PORT=6443
APISERVER_URL="https://$NODE_IP:$APISERVER_PORT"
ETCD_CLIENT_URL="http://127.0.0.1:23790"
ETCD_PEER_URL="http://127.0.0.1:23800"
STORAGE_CLASS="local"
PROVISIONER_NAME="shopstack.dev/local-hostpath"
PAUSE_IMAGE="shopstack.local/pause:3.10"
# hack/images tags CoreDNS with the version hack/tools/coredns pins.
COREDNS_IMAGE="shopstack.local/coredns:$(awk '$1 == "github.com/coredns/coredns" {print $2}' "$ROOT/hack/tools/coredns/go.mod")"
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
CONTAIN_CHAIN="SHOPSTACK-CONTAIN"        # mangle FORWARD: nothing forwarded past cni0
CONTAIN_IN_CHAIN="SHOPSTACK-CONTAIN-IN"   # mangle PREROUTING: cluster addresses from this machine only

PKI="$STATE/pki"
KUBECONFIGS="$STATE/kubeconfigs"
ADMIN_KUBECONFIG="$STATE/kubeconfig"

# Components in start order; down.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet
  kube-proxy kube-router metrics-server provisioner cert-manager)

# foreign_node_agents prints "NAME PID" for every kubelet, kube-proxy or
# kube-router on this machine that this cluster did not start: their iptables
# chains, ipsets and /var/lib/kubelet are not this cluster's to touch.
foreign_node_agents() {
  local p exe name pid ours
  ours=" "
  for name in kubelet kube-proxy kube-router; do
    pid="$(pid_of "$name")"
    [[ -n "$pid" ]] && ours+="$pid "
  done
  for p in /proc/[0-9]*; do
    exe="$({ tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null | head -n1)" || continue
    name="${exe##*/}"
    case "$name" in
      kubelet | kube-proxy | kube-router)
        [[ "$ours" == *" ${p#/proc/} "* ]] || echo "$name ${p#/proc/}" ;;
    esac
  done
}

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { printf 'local-cluster: error: %s\n' "$*" >&2; exit 1; }

# pid_of NAME prints the pid of a component this cluster started, when that
# process still runs the same binary; nothing otherwise.
pid_of() {
  local file="$STATE/pids/$1.pid" pid exe cmd
  [[ -f "$file" ]] || return 0
  { read -r pid; read -r exe; } <"$file" || return 0
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 0
  cmd="$({ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | head -n1)" || return 0
  [[ "$cmd" == "$exe" ]] && echo "$pid"
  return 0
}

# start NAME EXE ARGS... runs EXE in its own session, logs to
# $STATE/logs/NAME.log and records its pid and binary in $STATE/pids/NAME.pid.
start() {
  local name="$1"; shift
  local exe="$1"
  mkdir -p "$STATE/logs" "$STATE/pids"
  printf '==== %s %s\n' "$(date -Is)" "$*" >>"$STATE/logs/$name.log"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  local pid=$! i cmd
  printf '%s\n%s\n' "$pid" "$exe" >"$STATE/pids/$name.pid"
  # The child is the shell, then setsid, then EXE: pid_of recognises it only
  # once it has become EXE, so wait (at most 5 s) until it has.
  for ((i = 0; i < 50; i++)); do
    cmd="$({ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | head -n1)" || break
    [[ -z "$cmd" || "$cmd" == "$exe" ]] && break
    sleep 0.1
  done
}

# wait_for SECONDS WHAT LOGNAME CMD... retries CMD each second until it
# succeeds; on timeout shows the end of the component's log and fails.
wait_for() {
  local timeout="$1" what="$2" logname="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      if [[ -n "$logname" && -f "$STATE/logs/$logname.log" ]]; then
        log "last lines of $STATE/logs/$logname.log:"
        tail -n 25 "$STATE/logs/$logname.log" >&2
      fi
      die "$what did not come up; see $STATE/logs/, then run hack/local-cluster/down.sh"
    fi
    if [[ -n "$logname" && "$logname" != - && -f "$STATE/pids/$logname.pid" && -z "$(pid_of "$logname")" ]]; then
      log "$logname exited; last lines of $STATE/logs/$logname.log:"
      tail -n 25 "$STATE/logs/$logname.log" >&2
      die "$logname exited while waiting for $what; run hack/local-cluster/down.sh"
    fi
    sleep 1
  done
}

kubectl_bin() {
  local cp
  cp="$("$ROOT/hack/control-plane.sh" --check 2>/dev/null)" || die "kubectl is not built; run hack/local-cluster/up.sh"
  echo "$cp/kubectl"
}

# k runs kubectl as the cluster admin.
k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
