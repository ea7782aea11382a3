#!/usr/bin/env bash
# Takes the local cluster down and undoes what up.sh did to the machine.
#
#   hack/local-cluster/down.sh           stop everything, keep only $STATE/logs (and logs.prev)
#   hack/local-cluster/down.sh --purge   ... and remove $STATE entirely
#
# Stops exactly the processes up.sh started (pid files whose /proc/<pid>/cmdline
# still names the same binary), the API server before etcd; kills the pod
# containers (runc state under $STATE) and their containerd shims; puts back
# every sysctl up.sh saved (forwarding first, bridge filtering, the kubelet's
# kernel tunables, conntrack); unmounts everything under $STATE (and
# /var/lib/kubelet when up.sh made it); removes cni0, the node-address
# interface, up.sh's SHOPSTACK-* chains, the KUBE-* and CNI-* chains and the
# ipsets that were not there before up.sh (unless another kubelet, kube-proxy
# or kube-router has started on the machine since), libcni's cache of this
# cluster, the kubelet's log links and the host folders up.sh found missing;
# unloads br_netfilter if up.sh loaded it. What up.sh recorded of the machine
# (lib.sh) tells the cluster's from what was there before; without a record
# nothing outside $STATE is touched but the SHOPSTACK-* chains. Exits 1 when a
# chain of the cluster is left. Safe to run twice, or when nothing runs.
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

# Sysctls as up.sh found them, forwarding first: nothing of the cluster runs
# any more, and the machine must not route while its chains go.
if [[ -f "$HOST_SAVED/complete" ]]; then
  while read -r path value; do
    if [[ -w "$path" && "$(cat "$path")" != "$value" ]]; then
      echo "$value" >"$path" && log "restored ${path#/proc/sys/} = $value"
    fi
  done <"$HOST_SAVED/sysctls"
fi

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

# What up.sh recorded (lib.sh) tells the cluster's chains, ipsets and host
# folders from those that were there before; without a record, everything
# but the SHOPSTACK-* chains is taken for somebody else's. Should another
# kubelet, kube-proxy or kube-router have started since, its KUBE-* chains,
# ipsets and /var/lib/kubelet are left alone too.
[[ -f "$HOST_SAVED/complete" ]] || log "no record of what was on this machine before up.sh: only the SHOPSTACK-* chains and $STATE are removed"
foreign="$(foreign_node_agents)"
if [[ -n "$foreign" ]]; then
  log "another Kubernetes node runs on this machine (${foreign//$'\n'/, }): its iptables chains, ipsets and /var/lib/kubelet are left alone"
fi
if [[ -z "$foreign" ]] && ! recorded paths /var/lib/kubelet; then
  unmount_under /var/lib/kubelet
fi

# iptables: kube-proxy's own cleanup (up.sh refuses to start beside KUBE-*
# chains of another node, so with a record all are this cluster's), then
# every chain of kube-proxy, kube-router, the kubelet (KUBE-*), the portmap
# plugin (CNI-*) and up.sh.
BIN="$("$HERE/build.sh" --check 2>/dev/null || true)"
if [[ -z "$foreign" && -f "$HOST_SAVED/complete" && -n "$BIN" && -x "$BIN/kube-proxy" ]] && command -v iptables >/dev/null; then
  timeout 60 "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || log "kube-proxy --cleanup failed; removing its chains one by one"
fi
ours_chain() { # ours_chain IPTABLES TABLE CHAIN
  case "$3" in
    SHOPSTACK-*) return 0 ;;
    KUBE-* | CNI-*) [[ -z "$foreign" ]] && ! recorded chains "$1 $2 $3" ;;
    *) return 1 ;;
  esac
}
remove_chains() { # remove_chains IPTABLES
  local ipt="$1" table chain rule chains words pattern
  command -v "$ipt" >/dev/null || return 0
  for table in raw mangle nat filter; do
    "$ipt" -w 5 -t "$table" -S >/dev/null 2>&1 || continue
    chains=()
    while read -r _ chain; do
      ours_chain "$ipt" "$table" "$chain" && chains+=("$chain")
    done < <(list_chains "$ipt" | grep "^$table " || true)
    ((${#chains[@]})) || continue
    pattern="$(printf '%s|' "${chains[@]}")"
    pattern="${pattern%|}"
    # Rules of any chain that jump to one of them go first. xargs splits the
    # rule as the shell would (quoted comments stay one word) without
    # evaluating anything in it.
    while read -r rule; do
      mapfile -t words < <(xargs -n1 printf '%s\n' <<<"${rule/#-A/-D}" 2>/dev/null) || continue
      ((${#words[@]})) && "$ipt" -w 5 -t "$table" "${words[@]}" 2>/dev/null || true
    done < <("$ipt" -w 5 -t "$table" -S | grep -E -- "^-A .* -j ($pattern)( |$)" || true)
    for c in "${chains[@]}"; do "$ipt" -w 5 -t "$table" -F "$c" 2>/dev/null || true; done
    for c in "${chains[@]}"; do "$ipt" -w 5 -t "$table" -X "$c" 2>/dev/null || true; done
  done
}
remove_chains iptables
remove_chains ip6tables
if [[ -z "$foreign" ]] && command -v ipset >/dev/null; then
  while read -r set; do
    recorded ipsets "$set" || ipset destroy "$set" 2>/dev/null || true
  done < <(list_ipsets)
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

# Host folders: the ones up.sh found missing go; in the others only what is
# this cluster's is removed.
existed() { recorded paths "$1"; }
if [[ -z "$foreign" ]]; then
  # Pod cgroups the kubelet made (cgroupfs driver), deepest first.
  for top in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$top" ]] || continue
    find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  if existed /var/lib/kubelet; then
    # The kubelet's sockets that do not follow its root folder.
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/pod-resources/kubelet.sock
  else
    rm -rf /var/lib/kubelet
  fi
fi
# The kubelet links every container's log into /var/log/containers (and
# /var/log/pods); the links into $STATE are this cluster's.
for dir in /var/log/containers /var/log/pods; do
  [[ -d "$dir" ]] || continue
  find "$dir" -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  existed "$dir" || rmdir "$dir" 2>/dev/null || true
done
# libcni's cache: this cluster's network ("shopstack") and the loopback
# plugin's entries of its pod sandboxes; the folders too when up.sh found
# them missing and nothing else is left in them.
rm -f /var/lib/cni/results/shopstack-*
for sandbox in "$STATE"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*/; do
  [[ -d "$sandbox" ]] || continue
  sandbox="${sandbox%/}"
  rm -f "/var/lib/cni/results/cni-loopback-${sandbox##*/}-lo"
done
existed /var/lib/cni || rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
# containerd 1.6 keeps shim sockets in /run/containerd whatever its state
# folder; the folder goes only when up.sh made it and no other containerd
# runs on this machine.
other_containerd=false
for p in /proc/[0-9]*; do
  exe="$({ tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null | head -n1)" || continue
  [[ "$exe" == containerd || "$exe" == */containerd ]] && other_containerd=true && break
done
if [[ "$other_containerd" == true ]]; then
  log "another containerd runs on this machine: /run/containerd is left as it is"
elif existed /run/containerd; then
  log "/run/containerd was there before the cluster: left as it is"
else
  rm -rf /run/containerd
fi

# br_netfilter out again if up.sh loaded it.
if [[ -f "$HOST_SAVED/br_netfilter.loaded" ]]; then
  modprobe -r br_netfilter 2>/dev/null && log "unloaded br_netfilter" || log "could not unload br_netfilter (in use?)"
fi

# Nothing of the cluster may be left in iptables.
left=()
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  while read -r table chain; do
    ours_chain "$ipt" "$table" "$chain" && left+=("$ipt -t $table $chain")
  done < <(list_chains "$ipt")
done
# $STATE (with what up.sh found) stays for another try.
((${#left[@]} == 0)) || die "these chains of the cluster could not be removed: ${left[*]}; run down.sh again"

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
