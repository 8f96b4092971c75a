#!/usr/bin/env bash
# Issue 15, "What it must show" 3: split brain.  A gateway cut off from the
# PCs' network but not from Ceph (case A), and one cut off from Ceph but not
# from the PCs (case B), never writes an overlay after another gateway took
# its PC over - shown by trying.  On the lab network of tests/lib/netlab.sh
# (as test_cluster_failover.sh): Ceph, gateways gw1 and gw2 with keepalived
# (track script `pristinectl cluster health`), cluster-dead-after 5.
#
# Case A: 4 flushwriter writers (PCs a-00..a-03) served by gw1 through its
# VIP (gw2 drained while they log in), and a second session of PC a-00 held
# by qemu-io inside gw1's own namespace (127.0.0.1: still reachable when
# gw1's PC link is gone).  gw1's link on the PC net is cut: keepalived
# moves gw1's VIP to gw2, the writers reconnect there and gw2 takes them
# over, fencing gw1 (its Ceph address in `ceph osd blocklist ls`).  Then
# the qemu-io session writes a pattern of its own (0xa5) into a-00's
# overlay through gw1 and flushes: the write may not be acknowledged.  gw1
# is frozen (SIGSTOP) from the cut until that write is in its socket, so
# that the try reaches a gateway that still believes it owns the PC (it
# answers MEDIUM ERROR when librbd's write is refused, or exits first).
# gw1 exits 75 (fenced, docs/cluster.md) and, started again, rejoins.
#
# Case B: 4 writers (b-00..b-03) on gw1 as above, and a session of PC b-00
# from the pc namespace to gw1's home address.  gw1's link on the storage
# net is cut; that session writes 0xb6 and flushes (queued in librados,
# gw1 cannot reach the OSDs); gw1's heartbeat stops, its health check
# fails after cluster-dead-after, keepalived moves its VIP, gw2 takes the
# PCs over (fencing gw1).  The link is restored: the queued write is
# refused by the OSDs, never acknowledged; gw1 hears it is fenced and
# exits 75.
#
# In both cases: every writer went on (each stall within STALL_BOUND s),
# every acknowledged flushed write reads back through gw2 (flushwriter
# --verify), the tried pattern is not on the disk (read back through the
# gateway that serves the PC now); the takeover times are printed.
. "$(dirname "$0")/../lib/common.sh"
LAB_TOOLS=qemu-io
. "$TOP/tests/cluster/lablib.sh"

STALL_BOUND=${STALL_BOUND:-40}
NW=4
PFX=iqn.2026-12.org.pristine.test:split
TRY_OFF=$((1024 * 1024))     # beyond the writers' 32 blocks
LAB_LOGS="$tmpdir/try*.out $tmpdir/fw*.out"
lab_start $(for c in a b; do for i in $(seq 0 $((NW - 1))); do
	printf '%s:%s-%02d ' "$PFX" "$c" "$i"; done; done)

ceph_addr() {
	ctl "$1" --json cluster status | jq -r --arg g "$2" '.gateways[] | select(.name == $g) | .ceph_addr'
}
blocklisted() { timeout 20 ceph osd blocklist ls 2>/dev/null | grep -F -q "$1"; }
is_up() {
	[ "$(ctl "$1" --json cluster status | jq -r --arg g "$2" '.gateways[] | select(.name == $g) | .state')" = up ]
}
# all_online: the NW writers (and nothing else) online on the live gateways.
all_online() {
	[ "$(ctl 2 --json cluster status | jq '[.gateways[] | select(.state == "up") | .pcs] | add')" -eq "$NW" ]
}
# alive PID: the process runs (not a zombie waiting to be reaped).
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }
# exited PID SECS: waits at most SECS for PID (netlab_bg's) to exit; its
# status in RC.  1 when it still runs.
exited() {
	local end=$((SECONDS + $2))
	while alive "$1"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
	netlab_stop "$1"
	RC=$NETLAB_RC
}

# writers C: NW flushwriter writers PFX:C-xx on gw1 (gw2 drained while they
# log in), and TRY_NS's qemu-io session of PFX:C-00 at TRY_PORTAL, which
# reads from the FIFO on fd 9 (its first read done: the PC's disk is open
# on gw1).  FWPID, TRYPID.
writers() {
	local c=$1
	ctl 1 cluster drain gw2 >/dev/null || fail "drain gw2"
	netlab_bg pc "$tmpdir/fw-$c.out" "$FW" -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw-$c.state" \
		-I "$PFX:$c" -N "$NW" -b 32 -t 600 -R 60
	FWPID=$NETLAB_PID
	netlab_wait 30 eval '[ "$(online 2 gw1)" -eq '"$NW"' ]' ||
		{ ctl 2 cluster status; fail "case $c: the writers are not all on gw1"; }
	rm -f "$tmpdir/try-$c.in"
	mkfifo "$tmpdir/try-$c.in"
	# opened read-write first, so that neither open blocks; qemu-io sees
	# its end when fd 9 is closed
	exec 9<>"$tmpdir/try-$c.in"
	# (a background job's stdin is /dev/null unless redirected in it)
	netlab_bg "$TRY_NS" "$tmpdir/try-$c.out" sh -c 'exec timeout -k 5 120 qemu-io --image-opts "$1" <"$2"' \
		sh "driver=iscsi,transport=tcp,portal=$TRY_PORTAL,target=$TARGET,lun=0,initiator-name=$PFX:$c-00" \
		"$tmpdir/try-$c.in" 9>&-
	TRYPID=$NETLAB_PID
	echo "read $TRY_OFF 4k" >&9
	netlab_wait 30 grep -q 'read 4096/4096' "$tmpdir/try-$c.out" ||
		fail "case $c: the trying session of $PFX:$c-00 did not reach gw1"
	ctl 1 cluster drain gw2 --undo >/dev/null || fail "drain gw2 --undo"
	sleep 3
}

# account C: stop case C's writers; they all went on (stalls within the
# bound, longest printed); every acknowledged write reads back; the tried
# pattern P is not at TRY_OFF of PFX:C-00's disk.
account() {
	local c=$1 p=$2 rc max out
	netlab_stop "$FWPID" INT
	rc=$NETLAB_RC
	grep -E '^(writer|errors|flushwriter:) ' "$tmpdir/fw-$c.out" | grep -v 'went on after'
	grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/fw-$c.out" &&
		fail "sanitizer report in flushwriter"
	[ "$rc" -eq 0 ] || fail "case $c: flushwriter exited with $rc (a writer gave up or ended stalled)"
	[ "$(grep -c '^writer ' "$tmpdir/fw-$c.out")" -eq "$NW" ] || fail "case $c: not $NW writers reported"
	while read -r _ id _ _ acked _ failures _ _ _ _ _ _ rest; do
		[ "$acked" -gt 10 ] || fail "case $c: writer $id: only $acked acknowledged writes"
		[ "$failures" -ge 1 ] || fail "case $c: writer $id saw no failure: the cut did not hit it"
		[ -z "$rest" ] || fail "case $c: writer $id: $rest"
	done < <(grep '^writer ' "$tmpdir/fw-$c.out")
	max=$(grep '^writer ' "$tmpdir/fw-$c.out" | awk '$11 > m { m = $11 } END { print m + 0 }')
	echo "case $c: the longest stall of a writer $max s (bound $STALL_BOUND s)"
	[ "$(echo "$max <= $STALL_BOUND" | bc)" = 1 ] || fail "case $c: a writer stalled $max s"
	netlab_exec pc "$FW" --verify -p "$V1:$ISCSI_PORT" -T "$TARGET" -s "$tmpdir/fw-$c.state" \
		>"$tmpdir/verify-$c.out" 2>&1 || { cat "$tmpdir/verify-$c.out"; fail "case $c: flushwriter --verify"; }
	cat "$tmpdir/verify-$c.out"
	grep -q ': 0 bad$' "$tmpdir/verify-$c.out" || fail "case $c: verify's summary"
	out=$(netlab_exec pc timeout -k 5 60 qemu-io -r -c "read -P $p $TRY_OFF 4k" --image-opts \
		"driver=iscsi,transport=tcp,portal=$V1:$ISCSI_PORT,target=$TARGET,lun=0,initiator-name=$PFX:$c-00" 2>&1)
	echo "$out" | grep -q '^read 4096/4096' || { echo "$out"; fail "case $c: cannot read $PFX:$c-00's disk back"; }
	echo "$out" | grep -q 'Pattern verification failed' ||
		{ echo "$out"; fail "case $c: the write tried through the fenced gw1 is on $PFX:$c-00's disk"; }
	echo "    ok: case $c: every acknowledged write reads back; the tried pattern $p is not on the disk"
}

# tried C: the trying session's account: its write was never acknowledged
# (qemu-io prints "wrote ..." for an acknowledged write, "write failed:
# ..." for a refused one; a session whose gateway is gone gets no answer
# at all - qemu's driver tries to reconnect - and is stopped here after
# 15 s).
tried() {
	local c=$1
	exec 9>&-
	exited "$TRYPID" 15 || { netlab_stop "$TRYPID"; echo "    case $c: the trying session got no answer (stopped)"; }
	echo "    case $c: the trying session said: $(sed 's/qemu-io> //g' "$tmpdir/try-$c.out" | grep -v '^read \|^4 KiB\|^$' | tr '\n' ' ')"
	grep -q 'wrote ' "$tmpdir/try-$c.out" &&
		fail "case $c: the fenced gw1 acknowledged the tried write"
	return 0
}

# ============================================================ case A
echo "== case A: gw1 cut off from the PCs' network, not from Ceph"
TRY_NS=gw1 TRY_PORTAL=127.0.0.1:$ISCSI_PORT
writers a
G1=$(ceph_addr 2 gw1)
echo "    the 4 PCs on gw1 (Ceph client $G1); the trying session in gw1's namespace"
T_CUT=$SECONDS
netlab_cut gw1 pc
# gw1 frozen from the cut until the try is in its socket: the try then
# reaches a gateway that still believes it owns the PC (a half-dead one);
# otherwise gw1 learns it is fenced within a beat of the takeover and the
# try would only find it gone.
kill -STOP "${GW_PID[gw1]}"
netlab_wait 20 has_vip gw2 "$V1" || fail "case A: gw1's VIP did not move to gw2"
T_VIP=$((SECONDS - T_CUT))
netlab_wait 40 eval '[ "$(online 2 gw2)" -ge '"$NW"' ]' ||
	{ ctl 2 cluster status; fail "case A: gw2 did not take the PCs over"; }
# gw2's PC count comes from its heartbeat (1 s), so it may show the
# PCs a beat before the last lock break (and its blocklist) is done.
netlab_wait 20 blocklisted "$G1" || fail "case A: gw1 ($G1) is not blocklisted after the takeover"
T_TAKE=$((SECONDS - T_CUT))
grep -q 'taking over from gateway gw1' "$tmpdir/gw2.1.log" || fail "case A: gw2 did not say it took over from gw1"
echo "case A: VIP moved after $T_VIP s, the PCs taken over (gw1 blocklisted) after $T_TAKE s"
# The try: a write and a flush of a-00's overlay through gw1, then gw1 thaws.
echo "write -P 0xa5 $TRY_OFF 4k" >&9
echo "flush" >&9
sleep 1
kill -CONT "${GW_PID[gw1]}"
exited "${GW_PID[gw1]}" 20 || fail "case A: gw1 did not stop once fenced"
[ "$RC" -eq 75 ] || fail "case A: gw1 exited with $RC, not 75 (fenced)"
grep -q 'is fenced' "$tmpdir/gw1.1.log" || fail "case A: gw1 did not log that it is fenced"
echo "    ok: gw1 found itself fenced and exited 75 ($((SECONDS - T_CUT)) s after the cut)"
tried a
netlab_restore gw1 pc
start_gw 1 2
netlab_wait 20 is_up 2 gw1 || { ctl 2 cluster status; fail "case A: gw1 did not rejoin"; }
netlab_wait 20 has_vip gw1 "$V1" || fail "case A: gw1's VIP did not come back to it"
echo "    ok: gw1 started again rejoined, its VIP back"
# the writers on gw1's VIP log in again (redirected to gw2, where they are placed)
netlab_wait 30 all_online || { ctl 2 cluster status; fail "case A: the writers are not all online again"; }
sleep 10
account a 0xa5

# ============================================================ case B
echo "== case B: gw1 cut off from Ceph, not from the PCs"
TRY_NS=pc TRY_PORTAL=$(netlab_home 1):$ISCSI_PORT
writers b
G1=$(ceph_addr 2 gw1)
echo "    the 4 PCs on gw1 (Ceph client $G1); the trying session at gw1's home address"
T_CUT=$SECONDS
netlab_cut gw1 st
sleep 1
# The try: a write and a flush of b-00's overlay through the cut-off gw1
# (queued: gw1 cannot reach the OSDs).
echo "write -P 0xb6 $TRY_OFF 4k" >&9
echo "flush" >&9
netlab_wait 30 has_vip gw2 "$V1" || fail "case B: gw1's VIP did not move to gw2"
T_VIP=$((SECONDS - T_CUT))
netlab_wait 40 eval '[ "$(online 2 gw2)" -ge '"$NW"' ]' ||
	{ ctl 2 cluster status; fail "case B: gw2 did not take the PCs over"; }
# gw2's PC count comes from its heartbeat (1 s), so it may show the
# PCs a beat before the last lock break (and its blocklist) is done.
netlab_wait 20 blocklisted "$G1" || fail "case B: gw1 ($G1) is not blocklisted after the takeover"
T_TAKE=$((SECONDS - T_CUT))
echo "case B: VIP moved after $T_VIP s, the PCs taken over (gw1 blocklisted) after $T_TAKE s"
grep -q 'wrote ' "$tmpdir/try-b.out" && fail "case B: the cut-off gw1 acknowledged the tried write"
netlab_restore gw1 st
T_BACK=$SECONDS
exited "${GW_PID[gw1]}" 30 || fail "case B: gw1 did not stop once Ceph told it it is fenced"
[ "$RC" -eq 75 ] || fail "case B: gw1 exited with $RC, not 75 (fenced)"
echo "    ok: storage link back: gw1 found itself fenced and exited 75 after $((SECONDS - T_BACK)) s"
tried b
netlab_wait 30 all_online || { ctl 2 cluster status; fail "case B: the writers are not all online again"; }
sleep 3
account b 0xb6

netlab_stop "${GW_PID[gw2]}"
[ "$NETLAB_RC" -eq 0 ] || fail "gw2 exited with status $NETLAB_RC"
grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir"/gw*.log &&
	fail "sanitizer report in a gateway's log"
echo "PASS"
