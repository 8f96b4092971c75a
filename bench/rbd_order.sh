#!/usr/bin/env bash
# rbd_order.sh - the object size of pristine's RBD clones, by measurement
# (RBD_DISK_ORDER in src/storage/rbd_disk.h; the table is in
# docs/images.md, "RBD object size").  PRINTS NUMBERS, passes nothing.
#
# One throwaway single-node cluster (tests/lib/ceph.sh), a bluestore OSD on
# a sparse file of 8 GiB (CEPH_BLUESTORE_BYTES), pool size 1.  For each
# order in 16 18 20 22 (BENCH_ORDERS): a parent of 1 GiB (BENCH_PARENT_MIB)
# with objects of 2^order bytes (librbd refuses a clone with smaller
# objects than its parent's), written in full (4 MiB sequential) and
# snapshotted; a fresh clone of the snapshot, same object size, gets BENCH_WRITES (4096)
# random 4 KiB writes at QD16 (`rbd bench`, rbd_cache off, as pristine
# runs), and the script prints: write IOPS, the bytes the OSD took in
# (osd.op_in_bytes, client bytes including librbd's copy-ups), the bytes
# bluestore wrote to its device (bluestore_write_big_bytes +
# bluestore_write_small_bytes) and the objects the clone then holds.  The
# clone is removed before the next order.
#   bash bench/rbd_order.sh         (needs ceph-mon, ceph-osd, rbd, jq)
set -u
. "$(dirname "$0")/../tests/lib/common.sh"
for tool in ceph-mon ceph-osd ceph rados rbd jq; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
. "$TOP/tests/lib/ceph.sh"
PARENT_MIB=${BENCH_PARENT_MIB:-1024}
WRITES=${BENCH_WRITES:-4096}
ORDERS=${BENCH_ORDERS:-16 18 20 22}
export CEPH_BLUESTORE_BYTES=${CEPH_BLUESTORE_BYTES:-8589934592}
ceph_start "$tmpdir/ceph" bluestore
P=$CEPH_POOL
NOCACHE="--rbd_cache=false"
FEAT=layering,exclusive-lock,object-map,fast-diff

perf() {
	ceph --admin-daemon "$CEPH_DIR/run/ceph-osd.0.asok" perf dump 2>/dev/null ||
		ceph --admin-daemon "$CEPH_DIR/run/osd.0.asok" perf dump
}
printf '%-6s %-8s %8s %12s %14s %9s %12s\n' order object iops "osd in MiB" "bluestore MiB" objects "MiB/write"
for order in $ORDERS; do
	# the parent with the same object size (librbd refuses a clone with
	# smaller objects than its parent's)
	osz=$((1 << (order - 10)))K
	rbd create --size "${PARENT_MIB}M" --object-size "$osz" --image-feature $FEAT "$P/p$order" ||
		fail "create parent $order"
	rbd bench $NOCACHE --io-type write --io-size 4M --io-threads 4 --io-total "${PARENT_MIB}M" \
		--io-pattern seq "$P/p$order" >/dev/null || fail "fill parent $order"
	rbd snap create --no-progress "$P/p$order@v1" && rbd snap protect "$P/p$order@v1" ||
		fail "snapshot $order"
	rbd clone --object-size "$osz" --image-feature $FEAT "$P/p$order@v1" "$P/c$order" ||
		fail "clone order $order"
	before=$(perf)
	out=$(rbd bench $NOCACHE --io-type write --io-size 4K --io-threads 16 \
		--io-total $((WRITES * 4))K --io-pattern rand "$P/c$order") || fail "bench $order"
	after=$(perf)
	iops=$(echo "$out" | awk '/^elapsed:/ {printf "%d", $6}')
	osd_in=$(( $(echo "$after" | jq '.osd.op_in_bytes') - $(echo "$before" | jq '.osd.op_in_bytes') ))
	bs() { echo "$1" | jq '.bluestore.bluestore_write_big_bytes + .bluestore.bluestore_write_small_bytes'; }
	bsw=$(( $(bs "$after") - $(bs "$before") ))
	id=$(rbd info "$P/c$order" --format json | jq -r .id)
	objs=$(rados -p "$P" ls | grep -c "^rbd_data\.$id\.")
	awk -v o="$order" -v k="$((1 << (order - 10)))K" -v i="$iops" -v ib="$osd_in" -v b="$bsw" \
		-v n="$objs" -v w="$WRITES" 'BEGIN {
		printf "%-6s %-8s %8s %12.1f %14.1f %9s %12.3f\n", o, k, i, ib / 1048576, b / 1048576, n,
			ib / 1048576 / w }'
	rbd rm --no-progress "$P/c$order" >/dev/null 2>&1 || fail "rm c$order"
	rbd snap unprotect "$P/p$order@v1" && rbd snap rm --no-progress "$P/p$order@v1" &&
		rbd rm --no-progress "$P/p$order" >/dev/null 2>&1 || fail "rm p$order"
done
