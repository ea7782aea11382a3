#!/usr/bin/env bash
# Prints, in a stable form, the state of this machine that the local cluster
# changes while it runs: the sysctls up.sh saves, the iptables rules (without
# counters), the ipsets, the routes, the network interfaces and addresses and
# the host folders a kubelet or containerd writes to. make e2e-local takes it
# before up.sh and compares after down.sh: down.sh must leave the machine as
# it found it.
#
#   hack/local-cluster/host-state.sh                the state
#   hack/local-cluster/host-state.sh --diff FILE    compare with a state taken before; exit 1 on a difference
#
# What the kernel keeps once a cluster has used it is not a difference: the
# conntrack sysctls that appear with the nf_conntrack module, and the empty
# iptables tables and built-in chains it created. (A bridge sysctl that
# appears is one: br_netfilter stayed loaded.)
set -euo pipefail
# shellcheck source=hack/local-cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

state() {
  local path ipt p
  echo "## sysctls"
  while read -r path; do
    echo "sysctl ${path#/proc/sys/} = $(cat "$path")"
  done < <(host_sysctls)
  for ipt in iptables ip6tables; do
    command -v "$ipt-save" >/dev/null || continue
    echo "## $ipt"
    "$ipt-save" 2>/dev/null | awk -v v="$ipt" '
      /^#/ || /^COMMIT/ { next }
      /^\*/ { table = substr($0, 2); next }
      /^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ACCEPT/ { next }
      { sub(/ \[[0-9]+:[0-9]+\]$/, ""); print v, table, $0 }' || true
  done
  echo "## ipsets"
  ipset list -n 2>/dev/null | sort || true
  echo "## routes"
  ip -4 route show 2>/dev/null || true
  # Routes learnt from router advertisements count down their lifetime.
  ip -6 route show 2>/dev/null | grep -v '^fe80::' | sed -E 's/ expires [0-9]+sec//' || true
  echo "## interfaces"
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  ip -o addr show 2>/dev/null | awk '{print $2, $3, $4}' | grep -v ' fe80:' | sort
  echo "## folders"
  for p in "${HOST_PATHS[@]}"; do [[ -e "$p" ]] && echo "$p"; done
  return 0
}

case "${1:-}" in
  "") state ;;
  --diff)
    [[ -f "${2:-}" ]] || die "usage: host-state.sh --diff FILE"
    before="$2"
    # Lines only after (>) or only before (<); a conntrack sysctl new after
    # is one the nf_conntrack module brought, not a setting changed.
    changes="$(diff <(cat "$before") <(state) | grep '^[<>]' |
      awk -v before="$before" '
        BEGIN { while ((getline l < before) > 0) if (l ~ /^sysctl /) { split(l, f, " "); had[f[2]] = 1 } }
        /^> sysctl net\/netfilter\// && !($3 in had) { next }
        { print }')" || true
    if [[ -n "$changes" ]]; then
      printf '%s\n' "$changes"
      exit 1
    fi
    ;;
  *) die "usage: host-state.sh [--diff FILE]" ;;
esac
