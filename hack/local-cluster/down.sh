#!/usr/bin/env bash
# Takes the local cluster down and undoes what up.sh did to the machine.
#
#   hack/local-cluster/down.sh           stop everything, keep only $STATE/logs (and logs.prev)
#   hack/local-cluster/down.sh --purge   ... and remove $STATE entirely
#
# Stops exactly the processes up.sh started (pid files whose /proc/<pid>/cmdline
# still names the same binary), the API server before etcd; kills the pod
# containers (runc state under $STATE) and their containerd shims; unmounts
# everything under $STATE and /var/lib/kubelet; removes cni0, the node-address
# interface, up.sh's SHOPSTACK-* chains, the iptables chains and ipsets of
# kube-proxy, kube-router, the kubelet and the CNI plugins (unless another
# kubelet, kube-proxy or kube-router has started on the machine since),
# libcni's cache of this network and containerd's shim sockets; restores
# net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables. Safe to run
# twice, or when nothing runs.
set -euo pipefail
# shellcheck source=hack/local-cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=false
case "${1:-}" in
  "") ;;
  --purge) purge=true ;;
  *) die "usage: down.sh [--purge]" ;;
esac
[[ "$(id -u)" == 0 ]] || die "run as root"

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
  local state
  state="$({ awk '{print $3}' "/proc/$1/stat"; } 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# stop NAME: SIGTERM, then SIGKILL after a grace period.
stop() {
  local name="$1" pid i t0=$SECONDS
  pid="$(pid_of "$name")"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name ($pid) did not stop in 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    log "stopped $name ($((SECONDS - t0))s)"
  fi
  rm -f "$STATE/pids/$name.pid"
}

# Node agents first, so nothing restarts the pods being removed.
for name in cert-manager provisioner metrics-server kube-router kube-proxy kubelet; do
  stop "$name"
done

# Pod containers: runc keeps their state under $STATE/runc/<namespace>.
if command -v runc >/dev/null && [[ -d "$STATE/runc" ]]; then
  for root in "$STATE"/runc/*/; do
    [[ -d "$root" ]] || continue
    while read -r id; do
      [[ -n "$id" ]] || continue
      runc --root "$root" kill --all "$id" KILL >/dev/null 2>&1 || true
      runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done < <(runc --root "$root" list -q 2>/dev/null)
  done
fi
stop containerd
# The shims of this containerd name its socket on their command line.
shims=()
for p in /proc/[0-9]*; do
  cmd="$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" || continue
  [[ "$cmd" == *containerd-shim* && "$cmd" == *"-address $CONTAINERD_SOCK "* ]] && shims+=("${p#/proc/}")
done
if ((${#shims[@]})); then
  kill -TERM "${shims[@]}" 2>/dev/null || true
  sleep 1
  kill -KILL "${shims[@]}" 2>/dev/null || true
  log "stopped ${#shims[@]} containerd shim(s)"
fi

for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop "$name"
done
# Whatever else has a pid file (a component of an older version of up.sh).
for file in "$STATE"/pids/*.pid; do
  [[ -f "$file" ]] || continue
  name="${file##*/}"
  stop "${name%.pid}"
done

# Mounts: pod volumes, overlay snapshots, network namespaces, and anything a
# kubelet left under the default root.
unmount_under() {
  local prefix="$1" mp
  while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
  done < <(awk -v p="$prefix" '{ m = $5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print length(m) "\t" m }' /proc/self/mountinfo |
    sort -rn | cut -f2-)
}
unmount_under "$STATE"

# The chains and ipsets below (KUBE-*, CNI-*, kube-router's) and
# /var/lib/kubelet belong to whichever kubelet, kube-proxy and kube-router run
# on this machine; up.sh refuses to start beside another one, so with this
# cluster's stopped they are its own. Should another have started since, they
# are left alone.
foreign="$(foreign_node_agents)"
if [[ -n "$foreign" ]]; then
  log "another Kubernetes node runs on this machine (${foreign//$'\n'/, }): its iptables chains, ipsets and /var/lib/kubelet are left alone"
else
  unmount_under /var/lib/kubelet
fi

# iptables: kube-proxy's own cleanup, then every chain of kube-proxy,
# kube-router, the kubelet (KUBE-*), the portmap plugin (CNI-*) and up.sh.
BIN="$("$HERE/build.sh" --check 2>/dev/null || true)"
if [[ -z "$foreign" && -n "$BIN" && -x "$BIN/kube-proxy" ]] && command -v iptables >/dev/null; then
  "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
fi
remove_chains() { # remove_chains IPTABLES PATTERN
  local ipt="$1" pattern="$2" table rule chains words
  command -v "$ipt" >/dev/null || return 0
  for table in raw mangle nat filter; do
    "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
    mapfile -t chains < <("$ipt" -t "$table" -S | awk -v re="^($pattern)" '$1 == "-N" && $2 ~ re {print $2}')
    ((${#chains[@]})) || continue
    # Rules of any chain that jump to one of them go first. xargs splits the
    # rule as the shell would (quoted comments stay one word) without
    # evaluating anything in it.
    while read -r rule; do
      mapfile -t words < <(xargs -n1 printf '%s\n' <<<"${rule/#-A/-D}" 2>/dev/null) || continue
      ((${#words[@]})) && "$ipt" -t "$table" "${words[@]}" 2>/dev/null || true
    done < <("$ipt" -t "$table" -S | grep -E -- "^-A .* -j ($pattern)" || true)
    for c in "${chains[@]}"; do "$ipt" -t "$table" -F "$c" 2>/dev/null || true; done
    for c in "${chains[@]}"; do "$ipt" -t "$table" -X "$c" 2>/dev/null || true; done
  done
}
if [[ -z "$foreign" ]]; then
  remove_chains iptables 'KUBE-|CNI-|SHOPSTACK-'
  remove_chains ip6tables 'KUBE-|CNI-|SHOPSTACK-'
else
  remove_chains iptables 'SHOPSTACK-'
fi
if [[ -z "$foreign" ]] && command -v ipset >/dev/null; then
  while read -r set; do
    ipset destroy "$set" 2>/dev/null || true
  done < <(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-|inet6:KUBE-|inet6:kube-router-)' || true)
fi

for dev in "$BRIDGE_IF" "$DUMMY_IF"; do
  if ip link show "$dev" >/dev/null 2>&1; then
    ip link delete "$dev" && log "removed interface $dev"
  fi
done
if command -v conntrack >/dev/null; then
  for net in "$CLUSTER_CIDR" "$SERVICE_CIDR"; do
    conntrack -D -s "$net" >/dev/null 2>&1 || true
    conntrack -D -d "$net" >/dev/null 2>&1 || true
  done
fi

if [[ -z "$foreign" ]]; then
  # Pod cgroups the kubelet made (cgroupfs driver), deepest first.
  for top in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$top" ]] || continue
    find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf /var/lib/kubelet
fi
# libcni's cache of this cluster's network ("shopstack"); the folder only if
# nothing else is left in it.
rm -f /var/lib/cni/results/shopstack-*
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
# containerd 1.6 keeps shim sockets in /run/containerd whatever its state
# folder; leave them alone while another containerd runs on this machine.
other_containerd=false
for p in /proc/[0-9]*; do
  exe="$({ tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null | head -n1)" || continue
  [[ "$exe" == containerd || "$exe" == */containerd ]] && other_containerd=true && break
done
if [[ "$other_containerd" == false ]]; then
  rm -rf /run/containerd
else
  log "another containerd runs on this machine: /run/containerd is left as it is"
fi

for sysctl in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables; do
  saved="$STATE/${sysctl##*/}.saved"
  if [[ -f "$saved" ]]; then
    [[ -e "/proc/sys/$sysctl" ]] && cat "$saved" >"/proc/sys/$sysctl"
    rm -f "$saved"
  fi
done

# State: nothing of it may be mounted any more.
if [[ -d "$STATE" ]]; then
  if awk -v p="$STATE" '{ if ($5 == p || index($5, p "/") == 1) found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "something is still mounted under $STATE; $STATE is left as it is"
  fi
  if [[ "$purge" == true ]]; then
    rm -rf "$STATE"
    log "removed $STATE"
  else
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs ! -name logs.prev -exec rm -rf {} +
    log "kept $STATE/logs; down.sh --purge removes $STATE"
  fi
fi
log "down"
