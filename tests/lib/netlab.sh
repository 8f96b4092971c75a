# tests/lib/netlab.sh - a private test network of network namespaces for
# the cluster tests (issue 15): a "switch" with two bridges, Ceph, N
# gateways and a PC, each in its own namespace, addresses that exist only
# inside them.  Nothing here touches the root namespace's network: every
# link is created inside a test namespace (the peer of a veth pair is
# created directly in its target namespace) and deleting the namespaces
# removes all of it.  Needs root (ip netns).
# Source it after common.sh (and ceph.sh after it when Ceph runs in the lab):
#     . "$TOP/tests/lib/netlab.sh"
#
#   netlab_create NGW
#       namespaces ${NETLAB_PREFIX}{sw,ceph,gw1..gwNGW,pc} (NETLAB_PREFIX =
#       pr<PID>-, unique per run); in sw two bridges: br-pc, the PCs'
#       network $NETLAB_NET.1.0/24, and br-st, the storage network
#       $NETLAB_NET.2.0/24; veth pairs from sw to ceph (storage net), to
#       each gateway (both nets: links pc0 and st0) and to pc (pc0).
#       Installs the EXIT trap (netlab_cleanup, then common.sh's
#       cleanup_common) and sets CEPH_NETNS, CEPH_ADDR and CEPH_EXIT_TRAP
#       so that a following ceph_start (ceph.sh) runs Ceph in the ceph
#       namespace and chains its ceph_stop in front of the same cleanup.
#       Skips the test when namespaces cannot be made.
#   Addresses (print them):  netlab_home K (gwK on the PC net, .1.(10+K)),
#       netlab_vip K (gwK's floating service address, .1.(100+K)),
#       netlab_st K (gwK on the storage net, .2.(10+K)); NETLAB_PC_ADDR
#       (.1.200), NETLAB_CEPH_ADDR (.2.1).
#   netlab_ns NAME           the namespace's full name (gw1 -> pr123-gw1)
#   netlab_exec NAME CMD...  CMD in namespace NAME, in the foreground
#   netlab_bg NAME LOG CMD...
#       CMD in namespace NAME in the background, stdout and stderr to LOG;
#       NETLAB_PID its PID (ip netns exec execs CMD: the PID is CMD's),
#       recorded for the cleanup
#   netlab_stop PID [SIG]    SIG (default TERM) to a PID netlab_bg started,
#                            SIGKILL after 10 s, reaped (NETLAB_RC: its exit
#                            status), forgotten
#   netlab_cut NAME NET / netlab_restore NAME NET
#       NAME's link on NET (pc or st) down / up, on the switch's side (NAME
#       sees its carrier go)
#   netlab_wait SECS CMD...  CMD every 0.1 s until it succeeds; 1 on timeout
#   netlab_keepalived GW TRACK-CMD
#       keepalived in gateway GW's namespace (keepalived.sh's header)
#   netlab_cleanup
#       every PID netlab_bg started, then whatever else still runs in the
#       lab's namespaces (their children), is killed; the namespaces are
#       deleted
#
# Commands run with the PATH the test had when it sourced this file, so a
# CLI named here is the real one even when ceph.sh put its wrappers (which
# run the Ceph CLI in Ceph's namespace) first on PATH.
NETLAB_PREFIX=${NETLAB_PREFIX:-pr$$-}
NETLAB_NET=${NETLAB_NET:-10.$(($$ % 200 + 50))}
NETLAB_PC_ADDR=$NETLAB_NET.1.200
NETLAB_CEPH_ADDR=$NETLAB_NET.2.1
NETLAB_PATH=$PATH
NETLAB_GWS=0
NETLAB_NSS=""
NETLAB_PIDS=""
NETLAB_PID=""
NETLAB_RC=0
NETLAB_DIR=$tmpdir/netlab

netlab_home() { echo "$NETLAB_NET.1.$((10 + $1))"; }
netlab_vip() { echo "$NETLAB_NET.1.$((100 + $1))"; }
netlab_st() { echo "$NETLAB_NET.2.$((10 + $1))"; }
netlab_ns() { echo "$NETLAB_PREFIX$1"; }

netlab_exec() {
	local ns
	ns=$(netlab_ns "$1")
	shift
	PATH=$NETLAB_PATH ip netns exec "$ns" "$@"
}

netlab_bg() {
	local ns log=$2
	ns=$(netlab_ns "$1")
	shift 2
	PATH=$NETLAB_PATH ip netns exec "$ns" "$@" >"$log" 2>&1 &
	NETLAB_PID=$!
	NETLAB_PIDS="$NETLAB_PIDS $NETLAB_PID"
}

netlab_stop() {
	local pid=$1 sig=${2:-TERM} p rest=""
	kill -"$sig" "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	NETLAB_RC=$?
	# A reaped PID may be reused by someone else's process: forget it.
	for p in $NETLAB_PIDS; do
		[ "$p" = "$pid" ] || rest="$rest $p"
	done
	NETLAB_PIDS=$rest
}

netlab_wait() {
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

netlab_cut() { ip -n "$(netlab_ns sw)" link set "$1-$2" down; }
netlab_restore() { ip -n "$(netlab_ns sw)" link set "$1-$2" up; }

netlab_cleanup() {
	local p ns
	for p in $NETLAB_PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $NETLAB_PIDS; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	NETLAB_PIDS=""
	# Children of ours (keepalived's, socat's) still in our namespaces.
	for ns in $NETLAB_NSS; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
	done
	for ns in $NETLAB_NSS; do
		ip netns del "$ns" 2>/dev/null
	done
	NETLAB_NSS=""
}

# netlab_node NAME: a namespace of the lab, its loopback up.
netlab_node() {
	local ns
	ns=$(netlab_ns "$1")
	ip netns add "$ns" || return 1
	NETLAB_NSS="$NETLAB_NSS $ns"
	ip -n "$ns" link set lo up
}

# netlab_plug NAME NET ADDR: a veth pair from the switch's bridge br-NET
# (its end NAME-NET) to NAME (its end NET0, address ADDR/24).
netlab_plug() {
	local sw ns
	sw=$(netlab_ns sw)
	ns=$(netlab_ns "$1")
	ip -n "$sw" link add "$1-$2" type veth peer name "${2}0" netns "$ns" || return 1
	ip -n "$sw" link set "$1-$2" master "br-$2" up || return 1
	ip -n "$ns" addr add "$3/24" dev "${2}0" || return 1
	ip -n "$ns" link set "${2}0" up
}

netlab_create() {
	local n=$1 k sw
	NETLAB_GWS=$n
	mkdir -p "$NETLAB_DIR"
	trap 'netlab_cleanup; cleanup_common' EXIT
	CEPH_NETNS=$(netlab_ns ceph)
	CEPH_ADDR=$NETLAB_CEPH_ADDR
	CEPH_EXIT_TRAP='netlab_cleanup; cleanup_common'
	netlab_node sw || skip "cannot create a network namespace (ip netns add failed)"
	sw=$(netlab_ns sw)
	for k in pc st; do
		# no multicast snooping: VRRP's adverts reach every port at once
		ip -n "$sw" link add "br-$k" type bridge mcast_snooping 0 ||
			fail "cannot create a bridge in $sw"
		ip -n "$sw" link set "br-$k" up
	done
	netlab_node ceph || fail "netns ceph"
	netlab_plug ceph st "$NETLAB_CEPH_ADDR" || fail "cannot plug ceph into the storage net"
	for k in $(seq 1 "$n"); do
		netlab_node "gw$k" || fail "netns gw$k"
		netlab_plug "gw$k" pc "$(netlab_home "$k")" || fail "cannot plug gw$k into the PC net"
		netlab_plug "gw$k" st "$(netlab_st "$k")" || fail "cannot plug gw$k into the storage net"
	done
	netlab_node pc || fail "netns pc"
	netlab_plug pc pc "$NETLAB_PC_ADDR" || fail "cannot plug pc into the PC net"
	# Every link is up at both ends (bounded; a bridge port forwards at
	# once without STP, but a veth takes a moment to come up).
	netlab_wait 10 netlab_links_up || fail "the lab's links did not come up in 10 s"
}

# netlab_links_up: status 0 when every link of the lab is up.
netlab_links_up() {
	local k
	! ip -n "$(netlab_ns sw)" -o link show | grep -E -- '-(pc|st)@' | grep -qv 'state UP' || return 1
	for k in ceph pc $(seq -f 'gw%g' 1 "$NETLAB_GWS"); do
		! ip -n "$(netlab_ns "$k")" -o link show | grep -E '(pc0|st0)@' | grep -qv 'state UP' ||
			return 1
	done
}

. "$(dirname "${BASH_SOURCE[0]}")/keepalived.sh"
