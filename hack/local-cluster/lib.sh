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
HOST_IN_CHAIN="SHOPSTACK-HOST-IN"         # mangle INPUT: pods reach no host service but the API server

# What up.sh found on the machine before it changed anything, so down.sh puts
# back exactly that: sysctls, and which chains, ipsets and folders were there.
# Written whole before the first change (the file "complete" last); without a
# complete record down.sh takes everything it finds for somebody else's.
HOST_SAVED="$STATE/host"
# Settings the cluster changes while it runs: forwarding and bridge
# filtering (up.sh, the bridge plugin), the kubelet's kernel tunables,
# kube-proxy's conntrack table size. net.ipv4.ip_forward comes first: setting
# it also sets every interface's forwarding and conf.all.accept_redirects,
# which host_sysctls lists after it, so they are put back after it.
HOST_SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait)
# Host folders a kubelet, containerd 1.6 or libcni write to whatever their
# configured roots.
HOST_PATHS=(/var/lib/kubelet /run/containerd /var/lib/cni /var/log/containers /var/log/pods)
# Chains and ipsets of kube-proxy, kube-router, the kubelet, the CNI plugins
# and up.sh.
CHAIN_PATTERN='KUBE-|CNI-|SHOPSTACK-'
IPSET_PATTERN='^(KUBE-|kube-router-|inet6:KUBE-|inet6:kube-router-)'

# host_sysctls prints the /proc/sys files of the settings above that exist,
# and those ip_forward changes with it, in the order to put them back.
host_sysctls() {
  local name dir dev
  for name in "${HOST_SYSCTLS[@]}"; do
    name="/proc/sys/${name//.//}"
    [[ -r "$name" ]] && echo "$name"
  done
  echo /proc/sys/net/ipv4/conf/all/accept_redirects
  echo /proc/sys/net/ipv4/conf/default/forwarding
  for dir in /proc/sys/net/ipv4/conf/*/; do
    dev="${dir%/}"
    dev="${dev##*/}"
    case "$dev" in all | default | "$BRIDGE_IF" | "$DUMMY_IF" | veth*) continue ;; esac
    echo "${dir}forwarding"
  done
}

# usable_ip6tables: ip6tables exists and the kernel has IPv6 netfilter.
usable_ip6tables() { command -v ip6tables >/dev/null && ip6tables -w 5 -t mangle -S >/dev/null 2>&1; }

# list_chains IPTABLES prints "TABLE CHAIN" for every chain matching
# CHAIN_PATTERN.
list_chains() {
  local ipt="$1" table
  command -v "$ipt" >/dev/null || return 0
  for table in raw mangle nat filter; do
    "$ipt" -w 5 -t "$table" -S 2>/dev/null | awk -v t="$table" -v re="^($CHAIN_PATTERN)" '$1 == "-N" && $2 ~ re {print t, $2}'
  done
}

list_ipsets() {
  command -v ipset >/dev/null || return 0
  ipset list -n 2>/dev/null | grep -E "$IPSET_PATTERN" || true
}

# record_host writes what the machine has now into $HOST_SAVED. up.sh has
# taken an earlier run's leftovers down first, so nothing of a cluster is in
# it.
record_host() {
  rm -rf "$HOST_SAVED"
  mkdir -p "$HOST_SAVED"
  local f
  while read -r f; do printf '%s %s\n' "$f" "$(cat "$f")"; done < <(host_sysctls) >"$HOST_SAVED/sysctls"
  { list_chains iptables | sed 's/^/iptables /'; list_chains ip6tables | sed 's/^/ip6tables /'; } >"$HOST_SAVED/chains"
  list_ipsets >"$HOST_SAVED/ipsets"
  for f in "${HOST_PATHS[@]}"; do [[ -e "$f" ]] && echo "$f"; done >"$HOST_SAVED/paths"
  touch "$HOST_SAVED/complete"
}

# recorded FILE LINE: the complete record's FILE holds LINE; without a
# complete record, everything counts as recorded (somebody else's).
recorded() {
  [[ -f "$HOST_SAVED/complete" ]] || return 0
  grep -qxF -- "$2" "$HOST_SAVED/$1"
}

PKI="$STATE/pki"
KUBECONFIGS="$STATE/kubeconfigs"
ADMIN_KUBECONFIG="$STATE/kubeconfig"

# Components in start order; down.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet
  kube-proxy kube-router metrics-server provisioner cert-manager)

# foreign_node_agents prints "NAME PID" for every kubelet, kube-proxy or
# kube-router (or a distribution that embeds them) on this machine that this
# cluster did not start: their iptables
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
    # The last ones embed a kubelet and a kube-proxy under their own names.
    case "$name" in
      kubelet | kube-proxy | kube-router | k3s | k3s-server | k3s-agent | k0s | rke2 | kubelite)
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

# k runs kubectl as the cluster admin; kq is k for one quick question, bounded
# so that a server that accepts the connection and stalls cannot hang a wait.
k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
kq() { k --request-timeout=10s "$@"; }

# leftovers: nothing of the cluster runs (see up.sh --status) but an earlier
# run left something behind: a pid file, the node address's interface, a
# record of the machine.
leftovers() {
  compgen -G "$STATE/pids/*.pid" >/dev/null || ip link show "$DUMMY_IF" >/dev/null 2>&1 || [[ -d "$HOST_SAVED" ]]
}

# cluster_up: every component runs and the API server answers.
cluster_up() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ -n "$(pid_of "$c")" ]] || return 1
  done
  kq get --raw /readyz >/dev/null 2>&1
}
