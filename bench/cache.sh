#!/bin/bash
# cache.sh - the shared read cache of RBD versions (src/storage/cache.c),
# measured in-process by build/bench/cache_bench on a throwaway one-node
# Ceph cluster (tests/lib/ceph.sh: one mon, one memstore OSD on
# 127.0.0.1, stopped at exit).  PRINTS NUMBERS; nothing passes or fails on
# one.  Results: BENCHMARKS.md, "Shared read cache".
#
# An image of BENCH_CACHE_MIB (64) MiB of random data, snapshotted; then,
# for 1, 16 and 64 threads, each workload without the cache and through it:
#   seq 1 MiB      every thread reads the whole image in 1 MiB reads;
#   sparse 10%     every thread reads the same random 10% of the 4 KiB
#                  blocks in its own order, with chunks of 16, 64 and
#                  256 KiB (the chunk size's trade: bytes read vs calls).
# Usage: make build/bench/cache_bench && bash bench/cache.sh
set -u
. "$(dirname "$0")/../tests/lib/common.sh"
. "$TOP/tests/lib/ceph.sh"
BIN=$BUILD/bench/cache_bench
[ -x "$BIN" ] || fail "$BIN not built (make build/bench/cache_bench)"
MIB=${BENCH_CACHE_MIB:-64}

ceph_start "$tmpdir/ceph" memstore
head -c $((MIB << 20)) /dev/urandom >"$tmpdir/img.raw"
timeout 120 rbd import --no-progress "$tmpdir/img.raw" "$CEPH_POOL/img" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/img@s" >/dev/null || fail "rbd snap create"
rm -f "$tmpdir/img.raw"
SPEC=$CEPH_POOL/img@s
echo "image: $MIB MiB on a memstore OSD, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
for t in 1 16 64; do
	for chunk in 0 65536; do
		"$BIN" "$CEPH_CONF" admin "$SPEC" "$t" seq 1048576 "$chunk" || fail "cache_bench"
	done
	for chunk in 0 16384 65536 262144; do
		"$BIN" "$CEPH_CONF" admin "$SPEC" "$t" sparse 10 "$chunk" || fail "cache_bench"
	done
done
