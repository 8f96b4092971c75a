#!/usr/bin/env bash
# test_conformance.sh - libiscsi's SCSI/iSCSI conformance suite
# (iscsi-test-cu, family ALL) against a live pristined.
#
# Pass 1: a 128 MiB golden image, each client on its own overlay,
#         destructive tests allowed (-d), two sessions of one initiator for
#         the reservation tests, and the same URL twice so the MultipathIO
#         tests get their second path.
# Pass 2: the same, with 4096-byte logical blocks.
# Pass 3: the image exported --read-only (no overlays), ReadOnly suite only.
#
# CUnit counts a skipped test as passed, so the per-test output is parsed:
# a test that printed "[SKIPPED]" is a skip.  The test fails on any failed
# test, and on any skip that docs/conformance.md does not list with its
# reason.  Logs: $LOGDIR (default build/test-logs/conformance).
. "$(dirname "$0")/../lib/common.sh"

command -v iscsi-test-cu >/dev/null || skip "iscsi-test-cu not installed (libiscsi-bin)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

LOGDIR=${LOGDIR:-$TOP/build/test-logs/conformance}
mkdir -p "$LOGDIR"
DOC=$TOP/docs/conformance.md
INI1=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test
# Each initiator name has its own overlay (its own disk), so the tests that
# need two I_T nexuses on one disk (reservations, multipath) use the same
# name twice: two sessions with different ISIDs on one client's LU - the
# case of iPXE's session and the OS's session of one PC.
INI2=$INI1

IMG=$tmpdir/disk.img
truncate -s 128M "$IMG"

# The three passes are independent (a daemon each, its own state and
# port) and mostly wait on the suite's own timers, so they run at once.
# serve NAME ARGS...: start pristined ARGS with its log in
# $tmpdir/NAME.log, remembered as NAME (port, pid, log, target).
declare -A P_PORT P_PID P_LOG P_URL
trap 'for p in "${P_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done; cleanup_common' EXIT
serve() {
	local name=$1; shift
	DLOG=$tmpdir/pristined-$name.log
	start_daemon "$@"
	P_PORT[$name]=$PORT; P_PID[$name]=$DPID; P_LOG[$name]=$DLOG
	P_URL[$name]="iscsi://127.0.0.1:$PORT/$TARGET/0"
}
# run_pass NAME ARGS...: iscsi-test-cu with ARGS, output in $LOGDIR/NAME.log
run_pass() {
	local name=$1; shift
	timeout 1500 iscsi-test-cu -i "$INI1" -I "$INI2" "$@" >"$LOGDIR/$name.log" 2>&1
	echo "iscsi-test-cu ($name) exit status $?" >>"$LOGDIR/$name.log"
}
# finish NAME: that daemon must still run, then stop it (sanitizer check).
finish() {
	DPID=${P_PID[$1]}; DLOG=${P_LOG[$1]}
	daemon_alive
	stop_daemon
}

serve writable --image "$IMG" --state "$tmpdir/state"
serve writable-4k --image "$IMG" --block-size 4096 --state "$tmpdir/state-4k"
serve readonly --image "$IMG" --read-only --state "$tmpdir/state-ro"
DPID=""
run_pass writable -d -t ALL "${P_URL[writable]}" "${P_URL[writable]}" & w1=$!
run_pass writable-4k -d -t ALL "${P_URL[writable-4k]}" "${P_URL[writable-4k]}" & w2=$!
run_pass readonly -d -t ALL.ReadOnly "${P_URL[readonly]}" & w3=$!
wait "$w1" "$w2" "$w3"    # (a bare wait would wait for the daemons too)
for n in writable writable-4k readonly; do finish "$n"; done

. "$TOP/tests/lib/conformance.sh"
classify() { conf_classify "$@"; }

{
	classify "$LOGDIR/writable.log"
	classify "$LOGDIR/writable-4k.log" | sed 's/^\([a-z]*\) /\1 4k:/'
	classify "$LOGDIR/readonly.log"
} >"$LOGDIR/results.txt"
# ReadOnly runs for real in pass 2; its skip in pass 1 does not count.
if grep -q '^pass ReadOnly.ReadOnlySBC$' "$LOGDIR/results.txt"; then
	sed -i '/^skip \(4k:\)\?ReadOnly.ReadOnlySBC$/d' "$LOGDIR/results.txt"
fi
conf_verdict "conformance" "$LOGDIR/results.txt" "$DOC"
echo "PASS"
