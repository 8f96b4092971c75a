#!/usr/bin/env bash
# tests/cluster/flushwriter (the writer/checker of the cluster's failure
# tests) against one pristined, no cluster: 6 writers write and flush;
# pristined is killed with SIGKILL and started again on the same port and
# state 2 s later: every writer reports a stall (first failure -> next
# acknowledged write) of at least the 2 s it was down and at most
# STALL_BOUND s, none gives up, and --verify finds every acknowledged
# write.  Then the checker must fail where it should: a state claiming a
# newer acknowledged write than the block holds, and one naming an
# initiator that never wrote (its blocks hold the golden's content).
. "$(dirname "$0")/../lib/common.sh"
FW=$BUILD/asan/flushwriter
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
[ -x "$FW" ] || skip "$FW not built (make asan)"
command -v bc >/dev/null || skip "bc not installed"
STALL_BOUND=${STALL_BOUND:-10}
make_image "$tmpdir/golden.raw" 8
start_daemon --image "$tmpdir/golden.raw" --state "$tmpdir/state"
PORTAL=127.0.0.1:$PORT

"$FW" -p "$PORTAL" -T "$TARGET" -s "$tmpdir/fw.state" -N 6 -b 32 -t 9 -R 30 \
	>"$tmpdir/fw.out" 2>"$tmpdir/fw.err" &
FWPID=$!
sleep 2
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
sleep 2
"$PRISTINED" --listen "$PORTAL" --image "$tmpdir/golden.raw" --state "$tmpdir/state" >>"$DLOG" 2>&1 &
DPID=$!
for _ in $(seq 1 100); do
	[ "$(grep -c listening "$DLOG")" -ge 2 ] && break
	sleep 0.1
done
[ "$(grep -c listening "$DLOG")" -ge 2 ] || { cat "$DLOG"; fail "pristined did not start again"; }
rc=0
wait "$FWPID" || rc=$?
cat "$tmpdir/fw.out"
grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/fw.err" &&
	{ cat "$tmpdir/fw.err"; fail "sanitizer report in flushwriter"; }
[ "$rc" -eq 0 ] || { tail -n 20 "$tmpdir/fw.err"; fail "flushwriter exited with $rc"; }
[ "$(grep -c '^writer ' "$tmpdir/fw.out")" -eq 6 ] || fail "not 6 writers reported"
while read -r _ id iqn _ acked _ failures _ reconnects _ longest _ total rest; do
	[ "$acked" -gt 20 ] || fail "writer $id: only $acked acknowledged writes"
	[ "$failures" -ge 1 ] && [ "$reconnects" -ge 1 ] ||
		fail "writer $id saw no failure or did not log in again across the kill"
	[ "$(echo "$longest >= 1.5 && $longest <= $STALL_BOUND" | bc)" = 1 ] ||
		fail "writer $id: longest stall $longest s (pristined was down 2 s; bound $STALL_BOUND s)"
	[ -z "$rest" ] || fail "writer $id: $rest"
done < <(grep '^writer ' "$tmpdir/fw.out")
echo "    ok: every writer stalled across the kill and went on"

"$FW" --verify -p "$PORTAL" -T "$TARGET" -s "$tmpdir/fw.state" >"$tmpdir/v.out" 2>&1 ||
	{ cat "$tmpdir/v.out"; fail "verify after the kill"; }
cat "$tmpdir/v.out"
grep -q ': 0 bad$' "$tmpdir/v.out" || fail "verify's summary"
echo "    ok: every acknowledged write reads back"

# The checker fails when it should. Writer 0's block 0 claimed acknowledged
# at a write number 32 * 1000 later than any it made:
awk 'NR == 3 { $2 += 32000; $3 += 32000 } { print }' "$tmpdir/fw.state" >"$tmpdir/newer.state"
if "$FW" --verify -p "$PORTAL" -T "$TARGET" -s "$tmpdir/newer.state" >"$tmpdir/v2.out" 2>&1; then
	cat "$tmpdir/v2.out"; fail "verify passed a block older than its acknowledged write"
fi
grep -q 'block 0 holds a write older than the last acknowledged one' "$tmpdir/v2.out" ||
	{ cat "$tmpdir/v2.out"; fail "verify's complaint about the older write"; }
grep -q ': 1 bad$' "$tmpdir/v2.out" || { cat "$tmpdir/v2.out"; fail "not exactly 1 bad block"; }
# An initiator that never wrote (its overlay is the golden):
sed '2s/:flush-00 /:never-00 /' "$tmpdir/fw.state" >"$tmpdir/never.state"
if "$FW" --verify -p "$PORTAL" -T "$TARGET" -s "$tmpdir/never.state" >"$tmpdir/v3.out" 2>&1; then
	cat "$tmpdir/v3.out"; fail "verify passed blocks that hold no acknowledged write"
fi
grep -q 'never-00 block 0 holds no write of ours' "$tmpdir/v3.out" ||
	{ cat "$tmpdir/v3.out"; fail "verify's complaint about the lost writes"; }
echo "    ok: verify fails on a lost or stale acknowledged write"
stop_daemon
echo "PASS"
