#!/usr/bin/env bash
# The test network the cluster's failure tests run on (tests/lib/netlab.sh,
# tests/lib/keepalived.sh), checked on its own, before any gateway runs on it:
#   - Ceph in its namespace (ceph.sh with CEPH_NETNS): a gateway reaches it
#     on the storage net (rados lspools), the PC does not;
#   - three gateway namespaces, each with a trivial TCP service (socat,
#     answers its gateway's name) and keepalived: each VIP answers from its
#     home gateway; gw1's PC link cut -> gw1's VIP answers from gw2 within
#     FAILOVER_BOUND s (measured, printed); restored -> back on gw1;
#     gw1's keepalived stopped -> gw2; started again -> back on gw1; gw2's
#     track script failing -> gw2's VIP moves to gw3, and back once it
#     succeeds again;
#   - nothing of the lab appears in the root namespace's network, and the
#     cleanup leaves no namespace behind (checked by a second shell).
. "$(dirname "$0")/../lib/common.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns)"
for tool in ip socat keepalived bc; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
. "$TOP/tests/lib/netlab.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs

FAILOVER_BOUND=${FAILOVER_BOUND:-8}   # seconds: 3 adverts + skew is 3.6 s
SVC=7000
netlab_create 3
echo "lab: namespaces$NETLAB_NSS; PC net $NETLAB_NET.1.0/24, storage net $NETLAB_NET.2.0/24"
ip -o addr | grep -F " $NETLAB_NET." && fail "a lab address appeared in the root namespace"
for l in $(ip -o link | awk -F': ' '{print $2}'); do
	case ${l%@*} in gw[0-9]-*|ceph-st|pc-pc|br-pc|br-st|pc0|st0)
		fail "a lab link ($l) appeared in the root namespace";;
	esac
done
echo "    ok: nothing of the lab in the root namespace"

# ------------------------------------------------------------ Ceph in its namespace
ceph_start "$tmpdir/ceph" memstore
[ "${CEPH_MON%:*}" = "$NETLAB_CEPH_ADDR" ] || fail "the monitor is at $CEPH_MON"
netlab_exec gw2 timeout 30 rados lspools >"$tmpdir/lspools" 2>&1 ||
	{ cat "$tmpdir/lspools"; fail "gw2 cannot list Ceph's pools"; }
grep -qx "$CEPH_POOL" "$tmpdir/lspools" || fail "gw2: rados lspools: $(cat "$tmpdir/lspools")"
echo "    ok: gw2 reaches Ceph on the storage net (rados lspools: $(tr '\n' ' ' <"$tmpdir/lspools"))"
if netlab_exec pc timeout 20 rados --client_mount_timeout 5 lspools >"$tmpdir/pc-lspools" 2>&1; then
	fail "the PC reaches Ceph: $(cat "$tmpdir/pc-lspools")"
fi
echo "    ok: the PC does not reach Ceph"

# ------------------------------------------------------------ services and keepalived
for k in 1 2 3; do
	netlab_bg "gw$k" "$NETLAB_DIR/svc-gw$k.log" socat "TCP-LISTEN:$SVC,fork,reuseaddr" "SYSTEM:echo gw$k"
	netlab_keepalived "gw$k" "test ! -e $NETLAB_DIR/gw$k.sick"
done
# ask VIP: which gateway answers on VIP (empty when none does)
ask() {
	netlab_exec pc socat -t 2 -T 3 - "TCP:$1:$SVC,connect-timeout=1" </dev/null 2>/dev/null
}
answers() { [ "$(ask "$1")" = "$2" ]; }
now() { date +%s.%N; }
# moved VIP GW WHAT: wait until VIP answers from GW; print and check the time
# since T0 (set by the caller just before it acted).
moved() {
	local t
	netlab_wait $((FAILOVER_BOUND + 10)) answers "$1" "$2" ||
		{ tail -n 20 "$NETLAB_DIR"/keepalived-gw*.log; fail "$3: $1 never answered from $2"; }
	t=$(echo "$(now) - $T0" | bc)
	printf '    ok: %s: %s answers from %s after %.1f s\n' "$3" "$1" "$2" "$t"
	[ "$(echo "$t <= $FAILOVER_BOUND" | bc)" = 1 ] ||
		fail "$3: $1 moved to $2 after $t s (bound $FAILOVER_BOUND s)"
}
V1=$(netlab_vip 1)
V2=$(netlab_vip 2)
V3=$(netlab_vip 3)
for k in 1 2 3; do
	netlab_wait 20 answers "$(netlab_vip "$k")" "gw$k" ||
		{ tail -n 20 "$NETLAB_DIR"/keepalived-gw*.log; fail "VIP $(netlab_vip "$k") does not answer from gw$k"; }
done
echo "    ok: every VIP answers from its home gateway ($V1 gw1, $V2 gw2, $V3 gw3)"
[ "$(ask "$(netlab_home 1)")" = gw1 ] || fail "gw1's home address does not answer from gw1"

# gw1 cut off from the PCs: silent, the backup takes over after 3 adverts.
T0=$(now)
netlab_cut gw1 pc
moved "$V1" gw2 "gw1's PC link cut"
T0=$(now)
netlab_restore gw1 pc
moved "$V1" gw1 "gw1's PC link restored (preemption)"
answers "$V2" gw2 && answers "$V3" gw3 || fail "the other VIPs moved"

# gw1's keepalived stopped (SIGTERM: it gives its VIP up), then started again.
T0=$(now)
netlab_stop "${NETLAB_KA[gw1]}"
moved "$V1" gw2 "gw1's keepalived stopped"
T0=$(now)
netlab_keepalived gw1 "test ! -e $NETLAB_DIR/gw1.sick"
moved "$V1" gw1 "gw1's keepalived started again"

# gw2's health check fails: its VIP goes to its first backup, gw3.
T0=$(now)
touch "$NETLAB_DIR/gw2.sick"
moved "$V2" gw3 "gw2's track script failing"
answers "$V1" gw1 || fail "gw1's VIP moved when gw2 fell sick"
T0=$(now)
rm "$NETLAB_DIR/gw2.sick"
moved "$V2" gw2 "gw2's track script succeeding again"
answers "$V3" gw3 || fail "gw3's VIP moved"

# ------------------------------------------------------------ cleanup
ns_left=$NETLAB_NSS
ceph_stop
netlab_cleanup
for ns in $ns_left; do
	ip netns list | grep -qw "$ns" && fail "namespace $ns left after netlab_cleanup"
done
echo "    ok: every namespace deleted by the cleanup"
echo "PASS"
