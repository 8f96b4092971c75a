#!/usr/bin/env bash
# Issue 15, "What it must show" 4: a rolling restart of every gateway, one
# at a time, under load: no PC sees an error other than retried commands.
# On the lab network of tests/lib/netlab.sh (as test_cluster_failover.sh):
# Ceph, two gateways gw1 and gw2 with keepalived (track script `pristinectl
# cluster health`), 16 flushwriter writers in the pc namespace given gw1's
# VIP as their portal (placement and redirects spread them).  Then, for
# gw1 and then gw2: SIGTERM, wait for its exit (status 0), start it again,
# wait until `pristinectl cluster status` on the other gateway shows it up
# and its VIP is back on it, and until the 16 PCs are online again.
#   - no writer ever got a SCSI error (CHECK CONDITION other than the unit
#     attentions a new session brings): only transport failures, retried;
#   - every writer went on (none gave up or ended stalled), each stall
#     within STALL_BOUND s; the longest stall per restart is printed;
#   - every acknowledged flushed write reads back (flushwriter --verify);
#   - both gateways stop cleanly at the end, no sanitizer report.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/cluster/lablib.sh"

STALL_BOUND=${STALL_BOUND:-30}
WRITERS=16
PFX=iqn.2026-12.org.pristine.test:rolling
LAB_LOGS="$tmpdir/fw.out"
lab_start $(for i in $(seq 0 $((WRITERS - 1))); do printf '%s-%02d ' "$PFX" "$i"; done)

netlab_bg pc "$tmpdir/fw.out" "$FW" -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw.state" \
	-I "$PFX" -N "$WRITERS" -b 32 -t 600 -R 60
FWPID=$NETLAB_PID
all_online() { [ $(($(online "$1" gw1) + $(online "$1" gw2))) -eq "$WRITERS" ]; }
both_busy() { [ "$(online 2 gw1)" -ge 1 ] && [ "$(online 2 gw2)" -ge 1 ] && all_online 2; }
netlab_wait 30 both_busy || { ctl 2 cluster status; fail "the $WRITERS PCs are not spread over both gateways"; }
sleep 3
echo "under load: gw1 serves $(online 2 gw1) PCs, gw2 $(online 2 gw2)"

# ------------------------------------------------------------ the rolling restart
declare -A T_FROM
is_up() {
	[ "$(ctl "$1" --json cluster status | jq -r --arg g "$2" '.gateways[] | select(.name == $g) | .state')" = up ]
}
for k in 1 2; do
	o=$((3 - k))
	T_FROM[$k]=$(date +%s.%N)
	t=$SECONDS
	echo "== restart gw$k (serving $(online "$o" "gw$k") PCs)"
	netlab_stop "${GW_PID[gw$k]}" TERM
	[ "$NETLAB_RC" -eq 0 ] || fail "gw$k exited with status $NETLAB_RC at SIGTERM"
	echo "    gw$k stopped cleanly in $((SECONDS - t)) s"
	start_gw "$k" 2
	netlab_wait 20 is_up "$o" "gw$k" || { ctl "$o" cluster status; fail "gw$k is not up again"; }
	netlab_wait 20 has_vip "gw$k" "$(netlab_vip "$k")" || fail "gw$k's VIP did not come back to it"
	netlab_wait "$STALL_BOUND" all_online "$o" || { ctl "$o" cluster status; fail "not every PC online again"; }
	echo "    gw$k up again, its VIP back and all $WRITERS PCs online $((SECONDS - t)) s after the SIGTERM"
	sleep 8
	echo "    now: gw1 serves $(online "$o" gw1) PCs, gw2 $(online "$o" gw2)"
done
T_END=$(date +%s.%N)

# ------------------------------------------------------------ the writers' account
netlab_stop "$FWPID" INT
rc=$NETLAB_RC
grep -v '^flushwriter: .*: went on after' "$tmpdir/fw.out"
grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/fw.out" && fail "sanitizer report in flushwriter"
[ "$rc" -eq 0 ] || fail "flushwriter exited with $rc (a writer gave up or ended stalled)"
[ "$(grep -c '^writer ' "$tmpdir/fw.out")" -eq "$WRITERS" ] || fail "not $WRITERS writers reported"
while read -r _ id _ _ acked _ failures _ _ _ _ _ _ rest; do
	[ "$acked" -gt 10 ] || fail "writer $id: only $acked acknowledged writes"
	[ -z "$rest" ] || fail "writer $id: $rest"
done < <(grep '^writer ' "$tmpdir/fw.out")
[ "$(grep -c '^errors ' "$tmpdir/fw.out")" -eq "$WRITERS" ] || fail "no error count of each writer"
grep '^errors ' "$tmpdir/fw.out" | awk '$5 != 0 { bad = 1 } END { exit bad }' ||
	fail "a PC saw a SCSI error (not a retried command): $(grep ': SCSI error: ' "$tmpdir/fw.out" | head -n 3)"
grep -q ': SCSI error: ' "$tmpdir/fw.out" && fail "a SCSI error was logged"
transport=$(grep '^errors ' "$tmpdir/fw.out" | awk '{ s += $7 } END { print s + 0 }')
[ "$transport" -ge 1 ] || fail "no writer saw a failure: the restarts hit none of them"
echo "    ok: 0 SCSI errors; $transport transport failures, all retried; every writer went on"

# The longest stall per restart (a stall belongs to the restart during
# whose window it began), each within STALL_BOUND.
grep -o 'went on after [0-9.]* s, stalled since [0-9.]*' "$tmpdir/fw.out" | awk '{ print $8, $4 }' >"$tmpdir/stalls"
for k in 1 2; do
	to=${T_FROM[$((k + 1))]:-$T_END}
	max=$(awk -v a="${T_FROM[$k]}" -v b="$to" '$1 >= a && $1 < b && $2 > m { m = $2 } END { print m + 0 }' "$tmpdir/stalls")
	n=$(awk -v a="${T_FROM[$k]}" -v b="$to" '$1 >= a && $1 < b' "$tmpdir/stalls" | wc -l)
	echo "restart of gw$k: $n stalls, the longest $max s (bound $STALL_BOUND s)"
	[ "$n" -ge 1 ] || fail "no writer stalled in gw$k's restart: it hit none of them"
	[ "$(echo "$max <= $STALL_BOUND" | bc)" = 1 ] || fail "a writer stalled $max s in gw$k's restart"
done
early=$(awk -v a="${T_FROM[1]}" '$1 < a' "$tmpdir/stalls" | wc -l)
[ "$early" -eq 0 ] || echo "    (note: $early stalls began before the first restart)"

netlab_exec pc "$FW" --verify -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw.state" \
	>"$tmpdir/verify.out" 2>&1 || { cat "$tmpdir/verify.out"; fail "flushwriter --verify"; }
cat "$tmpdir/verify.out"
grep -q ': 0 bad$' "$tmpdir/verify.out" || fail "verify's summary"
echo "    ok: every acknowledged write reads back; no PC holds another's data"

for k in 1 2; do
	netlab_stop "${GW_PID[gw$k]}"
	[ "$NETLAB_RC" -eq 0 ] || fail "gw$k exited with status $NETLAB_RC"
done
grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir"/gw*.log &&
	fail "sanitizer report in a gateway's log"
echo "PASS"
