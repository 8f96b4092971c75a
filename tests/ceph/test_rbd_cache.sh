#!/usr/bin/env bash
# Issue 14: one shared read path for a version's blocks, measured by
# Ceph's own counters (the OSD's op_r_out_bytes, from its admin socket).
#   An 8 MiB golden on RBD at a snapshot; pristined -c with the shared
#   read cache ([server] rbd-cache); 16 clients read the whole disk at
#   once (qemu-img convert through iSCSI), each byte for byte right: the
#   OSD sends at most 1.5x the disk (each chunk once), and the daemon's
#   counters (status --json: rbd_cache) say every chunk was read from
#   Ceph once.  16 more clients then read it warm: the OSD sends nothing.
#   Then the control: rbd-cache = 0 and 16 clients again: the OSD sends at
#   least 8x the disk (one copy per client), so the counter measures what
#   the first part claims.  Durations of both are printed (BENCHMARKS.md).
#   Last, an image served at its head (which may change) is not cached.
# CACHE_MIB, CACHE_CLIENTS change the disk size and the number of clients;
# PRISTINED=build/pristined measures the release build.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-img jq cmp

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
MIB=${CACHE_MIB:-8}
N=${CACHE_CLIENTS:-16}
DISK=$((MIB << 20))
CACHE_M=$((MIB * 4 > 64 ? MIB * 4 : 64))    # room for the disk in every shard

ceph_start "$tmpdir/ceph" memstore
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
make_image "$tmpdir/golden.raw" "$MIB"
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"

# Bytes the OSD has sent to clients' reads since it started.
osd_read_bytes() {
	timeout 30 ceph daemon "$CEPH_DIR/run/osd.0.asok" perf dump | jq -e '.osd.op_r_out_bytes' ||
		fail "no op_r_out_bytes in osd.0's perf dump"
}

# write_conf CACHE [SPEC]: the daemon's configuration, rbd-cache = CACHE,
# the image at SPEC (default the snapshot).
write_conf() {
	PORT=$(free_port)
	cat >"$tmpdir/pristine.conf" <<EOF
[server]
listen = 127.0.0.1:$PORT
state = $STATE
ceph-conf = $PCONF
ceph-id = pristine
rbd-cache = $1
max-logins-per-address = 256

[image golden]
rbd = ${2:-$CEPH_POOL/golden@v1}
EOF
}

# storm NAME: N clients NAME-1..N read the whole disk at once; each must
# read the golden.  Sets DELTA (bytes the OSD sent meanwhile) and MS.
storm() {
	local before after t0 i pids=()
	before=$(osd_read_bytes)
	t0=$(date +%s%N)
	for i in $(seq 1 "$N"); do
		timeout -k 5 300 qemu-img convert --image-opts \
			"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$GTARGET,lun=0,initiator-name=$P:$1-$i" \
			-O raw "$tmpdir/seen-$i.raw" >"$tmpdir/convert-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 1 "$N"); do
		wait "${pids[$((i - 1))]}" || { cat "$tmpdir/convert-$i.log"; fail "$1-$i: qemu-img failed"; }
	done
	MS=$((($(date +%s%N) - t0) / 1000000))
	for i in $(seq 1 "$N"); do
		cmp "$tmpdir/seen-$i.raw" "$tmpdir/golden.raw" || fail "$1-$i does not read the golden"
		rm -f "$tmpdir/seen-$i.raw"
	done
	after=$(osd_read_bytes)
	DELTA=$((after - before))
	echo "    $N clients x $MIB MiB ($1): the OSD sent $DELTA bytes" \
		"($((DELTA * 100 / DISK))% of the disk) in $MS ms"
}

echo "== $N clients at once, through the shared cache"
write_conf ${CACHE_M}M
start_daemon_conf "$tmpdir/pristine.conf"
grep -q "read through a shared cache of $CACHE_M MiB" "$DLOG" || { cat "$DLOG"; fail "no cache logged"; }
storm cold
[ "$DELTA" -ge "$DISK" ] || fail "the OSD sent less than the disk ($DELTA): not measured?"
[ "$DELTA" -le $((DISK * 3 / 2)) ] || fail "the OSD sent $DELTA bytes for $N clients: more than 1.5x the disk"
COLD_MS=$MS
ctl_ok --json status
echo "$OUT" | jq -e --argjson disk "$DISK" '.rbd_cache | .inner_bytes == $disk and
	.misses == ($disk / .chunk_bytes) and .errors == 0 and .evictions == 0 and
	.bytes == $disk and .hits + .waits > 0 and .capacity_bytes == '"$CACHE_M"' * 1048576' >/dev/null ||
	fail "status: rbd_cache counters are not one read of each chunk"
ctl_ok status
echo "$OUT" | grep -E -q "^rbd cache: $MIB(\.0)? MiB of $CACHE_M(\.0)? MiB, [0-9]+ hits, [0-9]+ waits, $((DISK / 65536)) misses" ||
	fail "pristinectl status: no rbd cache line"

echo "== $N more clients, warm: nothing from the OSD"
storm warm
[ "$DELTA" -le $((DISK / 16)) ] || fail "the OSD sent $DELTA bytes for a warm cache"
WARM_MS=$MS
daemon_alive
stop_daemon

echo "== control: rbd-cache = 0, $N clients at once"
write_conf 0
start_daemon_conf "$tmpdir/pristine.conf"
storm nocache
[ "$DELTA" -ge $((DISK * (N < 8 ? N : 8))) ] ||
	fail "without the cache the OSD sent only $DELTA bytes: does op_r_out_bytes count these reads?"
ctl_ok --json status
[ "$(echo "$OUT" | jq -c .rbd_cache)" = "null" ] || fail "status shows a cache with rbd-cache = 0"
stop_daemon
NOCACHE_MS=$MS

echo "== the head of an image (it may change) is not cached"
write_conf 64M "$CEPH_POOL/golden"
start_daemon_conf "$tmpdir/pristine.conf"
N=2 storm head
[ "$DELTA" -ge $((DISK * 2)) ] || fail "the head was read from the OSD less than twice ($DELTA)"
ctl_ok --json status
echo "$OUT" | jq -e '.rbd_cache.misses == 0 and .rbd_cache.bytes == 0' >/dev/null ||
	fail "the head was read through the cache"
stop_daemon
MS=$NOCACHE_MS
echo "cold $COLD_MS ms, warm $WARM_MS ms, without the cache $MS ms"
echo "PASS"
