#!/usr/bin/env bash
# Warm boots survive crashes (lab/bootsets.h, storage/bootset.h): the
# daemon is killed -9 at random moments while PCs' boots are being merged
# into the boot set and saved (20 rounds, settle time 300 ms by the
# test-only PRISTINE_TEST_BOOTREC_SETTLE_MS).  After each restart the
# daemon starts and the set loads: its boots count is never below what
# the API showed before the kill (a merge is saved before it shows) nor
# above that plus the boots in flight, and the set is never garbage
# (0 chunks, or exactly the 9 chunks every boot reads).  Then a
# hand-corrupted file - truncated inside its first block, or a flipped
# byte in its header - is cut or dropped with a log line, and the daemon
# serves on (a PC reads its disk, and its next boot is learned again).
. "$(dirname "$0")/../lib/common.sh"
for tool in jq qemu-io python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

export PRISTINE_TEST_BOOTREC_SETTLE_MS=300
STATE=$tmpdir/state
make_image "$tmpdir/golden.img" 64
READS=(-c "read 0 4k" -c "read 1M 128k" -c "read 10M 64k" -c "read 33M 4k"
       -c "read 60M 256k")
ROUNDS=${ROUNDS:-20}
INFLIGHT=2   # PCs booting per round

start() {
	start_daemon --image "$tmpdir/golden.img" --state "$STATE" --nop-interval 0 "$@"
	for _ in $(seq 1 50); do [ -S "$STATE/pristined.sock" ] && break; sleep 0.1; done
	GTARGET=$(ctl --json status | jq -r '.targets[0].name')
	IMG=$(ctl --json status | jq -r '.targets[0].image')
}
field() { vjson "$IMG" ".version_list[0].boot_set.$1"; }
# a boot of PC $1 in the background (its errors do not matter: it may
# be cut by the kill)
boot_bg() {
	timeout -k 2 20 qemu-io "${READS[@]}" --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$GTARGET,lun=0,initiator-name=iqn.2024-01.test:$1" \
		>/dev/null 2>&1 &
}

seen=0
t0=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
	start
	boots=$(field boots)
	chunks=$(field chunks)
	echo "round $round: loaded $boots boots, $chunks chunks (seen before the kill: $seen)"
	[ "$boots" -ge "$seen" ] || fail "round $round: boots went down from $seen to $boots"
	[ "$boots" -le $((seen + INFLIGHT)) ] || fail "round $round: $boots boots, more than $seen + $INFLIGHT in flight"
	[ "$chunks" = 0 ] || [ "$chunks" = 9 ] || fail "round $round: garbage boot set of $chunks chunks"
	if [ "$chunks" = 9 ]; then
		[ "$(field bytes)" = $((9 * 65536)) ] || fail "round $round: boot set of $(field bytes) bytes"
	fi
	for k in $(seq 1 "$INFLIGHT"); do boot_bg "pc$k"; done
	# kill somewhere between the reads and well after the merges
	sleep "$(python3 -c 'import random; print(round(random.uniform(0.2, 1.3), 2))')"
	seen=$(field boots)
	kill -KILL "$DPID"
	wait "$DPID" 2>/dev/null
	DPID=""
	wait   # the PCs' qemu-io
	[ $(( $(date +%s) - t0 )) -lt 150 ] || fail "the kill rounds took too long"
done
start
[ "$(field boots)" -ge "$seen" ] || fail "boots went down after the last kill"
[ "$(field boots)" -gt 0 ] || fail "no boot was ever learned in $ROUNDS rounds"
stop_daemon

# A torn file (cut inside its first block): cut, logged, served on.
f=$STATE/images/$IMG/bootset-v1
size=$(stat -c %s "$f")
[ "$size" -gt 80 ] || fail "bootset-v1 is only $size bytes"
truncate -s 80 "$f"
start
grep -q "boot set file was torn or corrupt: .* cut" "$DLOG" || { cat "$DLOG"; fail "no log line of the cut file"; }
[ "$(field chunks)" = 0 ] || fail "a cut first block left $(field chunks) chunks"
before=$(field boots)   # the header's count is kept with the whole blocks
qio iqn.2024-01.test:pc9 "${READS[@]}"
for _ in $(seq 1 50); do [ "$(field boots)" -gt "$before" ] && break; sleep 0.1; done
[ "$(field boots)" = $((before + 1)) ] || fail "the boot after a cut file was not learned (boots $(field boots), was $before)"
[ "$(field chunks)" = 9 ] || fail "the boot after a cut file learned $(field chunks) chunks"
stop_daemon

# A flipped byte in the header: dropped, logged, served on.
python3 - "$f" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(9); b = f.read(1); f.seek(9); f.write(bytes([b[0] ^ 0x40]))
PY
start
grep -q "boot set file cannot be used (corrupt): dropped" "$DLOG" || { cat "$DLOG"; fail "no log line of the dropped file"; }
[ "$(field chunks)" = 0 ] || fail "a dropped file left $(field chunks) chunks"
qio iqn.2024-01.test:pc9 -c "read 0 4k"
daemon_alive
stop_daemon
echo "PASS"
