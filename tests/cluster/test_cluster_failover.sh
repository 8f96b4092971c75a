#!/usr/bin/env bash
# Issue 15, "What it must show" 2: kill -9 of a gateway under load from 16
# writers that flush after every write.  On the lab network of
# tests/lib/netlab.sh: Ceph in its namespace (storage net), two pristined
# gateways gw1 and gw2 in theirs (cluster-name gwK, cluster-address = its
# VIP on the PC net, records in RADOS), each with keepalived whose track
# script is `pristinectl cluster health` (tests/lib/keepalived.sh), and 16
# flushwriter writers (tests/cluster/flushwriter.c) in the pc namespace,
# all given gw1's VIP as their portal (login redirects spread them).
#   - both gateways serve some of the 16 PCs before the kill;
#   - kill -9 of gw1: its health check fails, its VIP moves to gw2, which
#     takes its PCs over (fencing gw1); every writer goes on within
#     STALL_BOUND (30) s: per writer the longest stall, p50 and max over
#     the writers that stalled are printed and asserted;
#   - gw1 started again rejoins with no manual step (up in the gateway
#     table, its VIP back on it: keepalived preempts) and the writers
#     carry on across that too;
#   - afterwards every acknowledged flushed write reads back, and no block
#     holds another PC's data (flushwriter --verify);
#   - the gateways still running stop cleanly, no sanitizer report.
. "$(dirname "$0")/../lib/common.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns)"
for tool in ip keepalived jq bc; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
CTL=${CTL:-$BUILD/pristinectl}
FW=$BUILD/asan/flushwriter
[ -x "$FW" ] || skip "$FW not built (make asan)"
. "$TOP/tests/lib/netlab.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon

STALL_BOUND=${STALL_BOUND:-30}
WRITERS=16
PFX=iqn.2026-12.org.pristine.test:failover
ISCSI_PORT=3260

netlab_create 2
t0=$SECONDS
ceph_start "$tmpdir/ceph" memstore
echo "ceph up in $((SECONDS - t0)) s at $CEPH_MON (namespace $CEPH_NETNS)"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
make_image "$tmpdir/golden.raw" 8
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"

declare -A GW_PID GW_LOG
fail() {
	echo "FAIL: $*"
	local f
	for f in "$tmpdir"/gw*.log "$NETLAB_DIR"/keepalived-gw*.log; do
		[ -f "$f" ] && { echo "--- $f (tail)"; tail -n 25 "$f"; }
	done
	exit 1
}
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
# start_gw K [RUN]: pristined of gwK in its namespace, log gwK.RUN.log; its
# PID in GW_PID[gwK]; returns once it listens (bounded).
start_gw() {
	local k=$1 log=$tmpdir/gw$1.${2:-1}.log
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
start_gw 1
start_gw 2
ctl 1 image add golden --rbd "$CEPH_POOL/golden@v1" >/dev/null || fail "image add on gw1"
for i in $(seq 0 $((WRITERS - 1))); do
	ctl 1 client add "$(printf '%s-%02d' "$PFX" "$i")" --image golden >/dev/null ||
		fail "client add $i on gw1"
done
gw2_clients() { [ "$(ctl 2 --json client list | jq '.clients | length')" -eq "$WRITERS" ]; }
netlab_wait 10 gw2_clients || fail "gw2 does not list the $WRITERS clients added on gw1"
TARGET=$(ctl 1 --json image list | jq -r '.images[] | select(.name == "golden") | .target')
[ -n "$TARGET" ] && [ "$TARGET" != null ] || fail "no target for image golden"
echo "gateways up; image golden ($TARGET) and $WRITERS clients on both"

for k in 1 2; do
	netlab_keepalived "gw$k" "timeout 2 $CTL --state $tmpdir/gw$k cluster health"
done
has_vip() { ip -n "$(netlab_ns "$1")" -o addr show dev pc0 | grep -qF " $2/"; }
for k in 1 2; do
	netlab_wait 20 has_vip "gw$k" "$(netlab_vip "$k")" || fail "gw$k does not hold its VIP"
done
V1=$(netlab_vip 1)
echo "VIPs on their home gateways: gw1 $V1, gw2 $(netlab_vip 2)"

# ------------------------------------------------------------ the writers
netlab_bg pc "$tmpdir/fw.out" "$FW" -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw.state" \
	-I "$PFX" -N "$WRITERS" -b 32 -t 600 -R 60
FWPID=$NETLAB_PID
# placed GW: how many PCs the gateway table shows online on GW
online() {
	ctl 2 --json cluster status | jq -r --arg g "$1" '.gateways[] | select(.name == $g) | .pcs'
}
both_busy() { [ "$(online gw1)" -ge 1 ] && [ "$(online gw2)" -ge 1 ] &&
	[ $(($(online gw1) + $(online gw2))) -eq "$WRITERS" ]; }
netlab_wait 30 both_busy || { ctl 2 cluster status; fail "the $WRITERS PCs are not spread over both gateways"; }
sleep 5
echo "before the kill: gw1 serves $(online gw1) PCs, gw2 $(online gw2)"
ctl 2 cluster status

# ------------------------------------------------------------ kill -9 of gw1
T_KILL=$SECONDS
kill -KILL "${GW_PID[gw1]}"
netlab_stop "${GW_PID[gw1]}"       # reaps it
netlab_wait 20 has_vip gw2 "$V1" || fail "gw1's VIP did not move to gw2"
echo "gw1 killed; its VIP on gw2 after $((SECONDS - T_KILL)) s"
took_over() { [ "$(online gw2)" -eq "$WRITERS" ]; }
netlab_wait "$STALL_BOUND" took_over || { ctl 2 cluster status; fail "gw2 did not take every PC over"; }
echo "gw2 serves all $WRITERS PCs $((SECONDS - T_KILL)) s after the kill"
sleep 15

# ------------------------------------------------------------ gw1 again
start_gw 1 2
T_BACK=$SECONDS
gw1_up() {
	[ "$(ctl 2 --json cluster status | jq -r '.gateways[] | select(.name == "gw1") | .state')" = up ]
}
netlab_wait 20 gw1_up || { ctl 2 cluster status; fail "gw1 did not rejoin"; }
netlab_wait 20 has_vip gw1 "$V1" || fail "gw1's VIP did not come back to it"
has_vip gw2 "$V1" && fail "gw2 still holds gw1's VIP"
echo "gw1 rejoined (up in the table, its VIP back) $((SECONDS - T_BACK)) s after its start"
# The PCs gw2 took over on gw1's VIP log in again (redirected): let them settle.
sleep 15

# ------------------------------------------------------------ the writers' account
netlab_stop "$FWPID" INT       # the writers end their run and account for it
rc=$NETLAB_RC
cat "$tmpdir/fw.out"
grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/fw.out" && fail "sanitizer report in flushwriter"
[ "$rc" -eq 0 ] || fail "flushwriter exited with $rc (a writer gave up or ended stalled)"
[ "$(grep -c '^writer ' "$tmpdir/fw.out")" -eq "$WRITERS" ] || fail "not $WRITERS writers reported"
grep '^writer ' "$tmpdir/fw.out" | awk '$7 > 0 { print $11 }' | sort -n >"$tmpdir/stalls"
n=$(wc -l <"$tmpdir/stalls")
[ "$n" -ge 1 ] || fail "no writer stalled: the kill hit none of them"
p50=$(sed -n "$(((n + 1) / 2))p" "$tmpdir/stalls")
max=$(tail -n 1 "$tmpdir/stalls")
echo "stalls of the $n writers that saw a failure: p50 $p50 s, max $max s (bound $STALL_BOUND s)"
[ "$(echo "$max <= $STALL_BOUND" | bc)" = 1 ] || fail "a writer stalled $max s (bound $STALL_BOUND s)"
while read -r _ id _ _ acked _ failures _ _ _ _ _ _ rest; do
	[ "$acked" -gt 10 ] || fail "writer $id: only $acked acknowledged writes"
	[ -z "$rest" ] || fail "writer $id: $rest"
done < <(grep '^writer ' "$tmpdir/fw.out")
echo "    ok: every writer went on within $STALL_BOUND s of each failure"

netlab_exec pc "$FW" --verify -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw.state" \
	>"$tmpdir/verify.out" 2>&1 || { cat "$tmpdir/verify.out"; fail "flushwriter --verify"; }
cat "$tmpdir/verify.out"
grep -q ': 0 bad$' "$tmpdir/verify.out" || fail "verify's summary"
echo "    ok: every acknowledged write reads back; no PC holds another's data"

# ------------------------------------------------------------ clean stop
for k in 1 2; do
	netlab_stop "${GW_PID[gw$k]}"
	[ "$NETLAB_RC" -eq 0 ] || fail "gw$k exited with status $NETLAB_RC"
done
grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir"/gw*.log &&
	fail "sanitizer report in a gateway's log"
echo "PASS"
