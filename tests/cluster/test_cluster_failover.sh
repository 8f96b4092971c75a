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
. "$TOP/tests/cluster/lablib.sh"

STALL_BOUND=${STALL_BOUND:-30}
WRITERS=16
PFX=iqn.2026-12.org.pristine.test:failover
LAB_LOGS="$tmpdir/fw.out"
lab_start $(for i in $(seq 0 $((WRITERS - 1))); do printf '%s-%02d ' "$PFX" "$i"; done)

# ------------------------------------------------------------ the writers
netlab_bg pc "$tmpdir/fw.out" "$FW" -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw.state" \
	-I "$PFX" -N "$WRITERS" -b 32 -t 600 -R 60
FWPID=$NETLAB_PID
both_busy() { [ "$(online 2 gw1)" -ge 1 ] && [ "$(online 2 gw2)" -ge 1 ] &&
	[ $(($(online 2 gw1) + $(online 2 gw2))) -eq "$WRITERS" ]; }
netlab_wait 30 both_busy || { ctl 2 cluster status; fail "the $WRITERS PCs are not spread over both gateways"; }
sleep 5
echo "before the kill: gw1 serves $(online 2 gw1) PCs, gw2 $(online 2 gw2)"
ctl 2 cluster status

# ------------------------------------------------------------ kill -9 of gw1
T_KILL=$SECONDS
kill -KILL "${GW_PID[gw1]}"
netlab_stop "${GW_PID[gw1]}"       # reaps it
netlab_wait 20 has_vip gw2 "$V1" || fail "gw1's VIP did not move to gw2"
echo "gw1 killed; its VIP on gw2 after $((SECONDS - T_KILL)) s"
took_over() { [ "$(online 2 gw2)" -eq "$WRITERS" ]; }
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
