# tests/cluster/lablib.sh - the two-gateway cluster on the lab network that
# the failure tests share (test_cluster_failover, _rolling, _split).
# Source it after common.sh; then:
#   lab_start CLIENT...
#       the lab network of tests/lib/netlab.sh with 2 gateways, Ceph in its
#       namespace (memstore), an 8 MiB golden rbd/golden@v1, pristined gw1
#       and gw2 (cluster-name gwK, cluster-address = its VIP, records in
#       RADOS, cluster-dead-after 5), image golden added on gw1, the
#       clients CLIENT... added on gw1 and seen by gw2, keepalived on each
#       (track: `pristinectl cluster health`), each VIP on its home gateway.
#       Sets TARGET (the image's target), V1 (gw1's VIP), PCONF.
#   start_gw K RUN      pristined of gwK in its namespace, log gwK.RUN.log,
#                       PID in GW_PID[gwK]; returns once it listens (bounded)
#   ctl K ARGS...       pristinectl on gwK
#   online K GW         how many PCs gateway K's table shows online on GW
#   fail MSG            prints the gateways', keepalived's and LAB_LOGS'
#                       (globs) tails, copies them to KEEP_LOGS=DIR if set
# Skips (77) without root, ip, keepalived, jq, bc, LAB_TOOLS, or flushwriter
# (FW, built by make asan).
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns)"
for tool in ip keepalived jq bc ${LAB_TOOLS:-}; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
CTL=${CTL:-$BUILD/pristinectl}
FW=$BUILD/asan/flushwriter
[ -x "$FW" ] || skip "$FW not built (make asan)"
. "$TOP/tests/lib/netlab.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon
ISCSI_PORT=3260
declare -A GW_PID GW_LOG

fail() {
	echo "FAIL: $*"
	local f
	for f in "$tmpdir"/gw*.log "$NETLAB_DIR"/keepalived-gw*.log ${LAB_LOGS:-}; do
		[ -f "$f" ] && { echo "--- $f (tail)"; tail -n 30 "$f"; }
	done
	[ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" &&
		cp "$tmpdir"/*.log "$tmpdir"/*.out "$NETLAB_DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null
	exit 1
}

start_gw() {
	local k=$1 log=$tmpdir/gw$1.$2.log
	GW_LOG[gw$k]=$log
	netlab_bg "gw$k" "$log" "$PRISTINED" -c "$tmpdir/gw$k.conf"
	GW_PID[gw$k]=$NETLAB_PID
	for _ in $(seq 1 300); do
		grep -q listening "$log" && return 0
		kill -0 "$NETLAB_PID" 2>/dev/null || fail "gw$k exited at start"
		sleep 0.1
	done
	fail "gw$k did not start listening in 30 s"
}

ctl() { local k=$1; shift; timeout 30 "$CTL" --state "$tmpdir/gw$k" "$@"; }

online() {
	ctl "$1" --json cluster status | jq -r --arg g "$2" '.gateways[] | select(.name == $g) | .pcs'
}

has_vip() { ip -n "$(netlab_ns "$1")" -o addr show dev pc0 | grep -qF " $2/"; }
lab_gw2_clients() { [ "$(ctl 2 --json client list | jq '.clients | length')" -eq "$1" ]; }

lab_start() {
	local k c t0
	netlab_create 2
	t0=$SECONDS
	ceph_start "$tmpdir/ceph" memstore
	echo "ceph up in $((SECONDS - t0)) s at $CEPH_MON (namespace $CEPH_NETNS)"
	PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
	make_image "$tmpdir/golden.raw" 8
	timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
	timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"
	for k in 1 2; do
		cat >"$tmpdir/gw$k.conf" <<EOF
[server]
state = $tmpdir/gw$k
listen = 0.0.0.0:$ISCSI_PORT
ceph-conf = $PCONF
ceph-id = pristine
cluster-name = gw$k
cluster-address = $(netlab_vip "$k"):$ISCSI_PORT
cluster-pool = $CEPH_POOL
cluster-dead-after = 5
EOF
	done
	start_gw 1 1
	start_gw 2 1
	ctl 1 image add golden --rbd "$CEPH_POOL/golden@v1" >/dev/null || fail "image add on gw1"
	for c in "$@"; do
		ctl 1 client add "$c" --image golden >/dev/null || fail "client add $c on gw1"
	done
	netlab_wait 10 lab_gw2_clients $# || fail "gw2 does not list the $# clients added on gw1"
	TARGET=$(ctl 1 --json image list | jq -r '.images[] | select(.name == "golden") | .target')
	[ -n "$TARGET" ] && [ "$TARGET" != null ] || fail "no target for image golden"
	for k in 1 2; do
		netlab_keepalived "gw$k" "timeout 2 $CTL --state $tmpdir/gw$k cluster health"
	done
	for k in 1 2; do
		netlab_wait 20 has_vip "gw$k" "$(netlab_vip "$k")" || fail "gw$k does not hold its VIP"
	done
	V1=$(netlab_vip 1)
	echo "gateways up, image golden ($TARGET), $# clients on both; VIPs home: gw1 $V1, gw2 $(netlab_vip 2)"
}
