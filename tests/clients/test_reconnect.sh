#!/usr/bin/env bash
# A real client survives its sessions being killed mid-write, without
# losing or misplacing data: qemu-img convert (libiscsi underneath, which
# logs in again and re-issues the commands that were in flight) writes
# 64 MiB of random data to the LUN at a limited rate, 8 requests in
# parallel, while the admin ends its session every second with
# `pristinectl session kill`.  The copy must succeed, the LUN must then
# read back exactly the source, the daemon must stay up and the golden
# image must not change.
. "$(dirname "$0")/../lib/common.sh"

LUN=0
MIB=64
INI=iqn.2024-01.test.pristine:reconnect
CTL=${PRISTINECTL:-$BUILD/pristinectl}

for tool in qemu-img sha256sum cmp python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
[ -x "$CTL" ] || skip "$CTL not built (make)"

img=$tmpdir/disk.raw
make_image "$img" "$MIB"
sum0=$(sha256sum <"$img")
python3 - "$tmpdir/src.raw" "$MIB" <<'PY'
import sys, random
rnd = random.Random(11)
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(rnd.randbytes(1 << 20))
PY

state=$tmpdir/state
start_daemon --image "$img" --state "$state"
echo "pristined on port $PORT, target $TARGET"
opts="driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:$PORT"
opts="$opts,file.target=$TARGET,file.lun=$LUN,file.initiator-name=$INI"

# our_sessions: TSIHs of $INI's sessions.
our_sessions() {
	timeout 10 "$CTL" --state "$state" --json session list 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin).get("sessions", []):
    if s.get("initiator") == sys.argv[1]:
        print(s["tsih"])' "$INI"
}

# 64 MiB at 12 MiB/s: about 5 s of writing.
timeout -k 5 300 qemu-img convert -n -W -m 8 -r 12M -f raw "$tmpdir/src.raw" \
	--target-image-opts "$opts" >"$tmpdir/convert.log" 2>&1 &
cpid=$!
kills=0
sleep 1
while kill -0 "$cpid" 2>/dev/null; do
	for t in $(our_sessions); do
		if timeout 10 "$CTL" --state "$state" session kill "$t" >>"$tmpdir/ctl.log" 2>&1; then
			kills=$((kills + 1))
			echo "killed session $t"
		fi
	done
	sleep 1
done
rc=0; wait "$cpid" || rc=$?
sed 's/^/    | /' "$tmpdir/convert.log"
daemon_alive
echo "sessions killed during the copy: $kills"
grep -E 'logged in|ended by the admin' "$DLOG" | sed 's/^/    | /'
[ "$rc" -eq 0 ] || fail "qemu-img convert failed (rc=$rc) although libiscsi reconnects after a killed session"
[ "$kills" -ge 2 ] || fail "only $kills session kills happened during the copy: the test did not test anything"

timeout -k 5 300 qemu-img convert --image-opts "$opts" -O raw "$tmpdir/back.raw" >"$tmpdir/back.log" 2>&1 \
	|| { cat "$tmpdir/back.log"; fail "reading the LUN back failed"; }
cmp "$tmpdir/back.raw" "$tmpdir/src.raw" || fail "data written across killed sessions was lost or misplaced"
echo "LUN holds exactly the source after $kills session kills"

stop_daemon
[ "$(sha256sum <"$img")" = "$sum0" ] || fail "the golden image changed"
echo PASS
