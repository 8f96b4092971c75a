#!/usr/bin/env bash
# Issue 14, PC overlays on RBD: the overlay (storage/overlay.h) with its
# files in Ceph (storage/ovl_ceph.h) against a real single-node cluster
# (tests/lib/ceph.sh), through build/asan/ovl_ceph_check
# (tests/ceph/ovl_ceph_check.c; its header lists the checks of each phase):
#   setup  the golden image with a pattern and a hole, snapshot v1;
#   main   writes read back (written blocks from the overlay, the rest from
#          the golden), close + reopen gives the same data, unmap reads
#          zeros, quota -> -ENOSPC with used_bytes right (also after a
#          reopen), a second open of an open overlay refused (the data
#          image's lock) without writing, discard -> the reopen is empty
#          while the old instance stays until the purge, which removes it;
#   crash  a child that writes and flushes is killed -9: the reopen breaks
#          its lock (previous instance) and finds every flushed write;
#   fence  a live holder (a child) named as the previous instance: the
#          parent's open breaks its lock, and the child's later write and
#          flush fail and land nowhere;
#   full   the OSD made full: writes -ENOSPC within a bound (never a hang),
#          a flush -ENOSPC or done, never the sticky error; space back:
#          writes and flushes go on, the reopen is whole;
#   bench  32 threads of 4 KiB random writes into a fresh overlay: IOPS
#          printed, next to rbd bench on a fresh clone (numbers, no verdict).
# Around them, Ceph's own view: what the purge reports gone is gone from
# rbd ls / rados ls, and the golden's data objects and snapshot content
# are unchanged at the end.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs sha256sum
CHECKER=$BUILD/asan/ovl_ceph_check
[ -x "$CHECKER" ] || skip "$CHECKER not built (make asan)"

t0=$SECONDS
ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
echo "ceph up in $((SECONDS - t0)) s: mon $CEPH_MON, pool $CEPH_POOL"

check() {
	local bin=$CHECKER
	# the bench's numbers from the build without sanitizers when there is one
	[ "$1" = bench ] && [ -x "$BUILD/bench/ovl_ceph_check" ] && bin=$BUILD/bench/ovl_ceph_check
	ceph_checker ovl_ceph_check "$bin" "$@"
}

echo "== setup"
check setup
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/pristine.t.golden@v1" - | sha256sum; }
SHA=$(snap_sha)
PREFIX=$(timeout 30 rbd info "$CEPH_POOL/pristine.t.golden" | sed -n 's/.*block_name_prefix: //p')
[ -n "$PREFIX" ] || fail "no block_name_prefix for the golden"
ceph_data_objects "$PREFIX" >"$tmpdir/golden.before"
[ -s "$tmpdir/golden.before" ] || fail "the golden has no data objects"

echo "== main"
check main
timeout 30 rbd ls "$CEPH_POOL" >"$tmpdir/ls.txt" || fail "rbd ls"
timeout 30 rados -p "$CEPH_POOL" ls >"$tmpdir/objs.txt" || fail "rados ls"
n=0
while read -r _ name; do
	case $name in
	*.data) grep -qxF "$name" "$tmpdir/ls.txt" && fail "rbd ls still lists $name after the purge" ;;
	*.) grep -q "^${name//./\\.}" "$tmpdir/objs.txt" && fail "rados ls still lists objects $name* after the purge" ;;
	esac
	n=$((n + 1))
done < <(grep '^gone: ' "$tmpdir/check.out")
[ "$n" -ge 2 ] || fail "the checker reported no purged names"
grep -q '^pristine\.t\.ovl\.a\.[0-9a-f]\{16\}\.data$' "$tmpdir/ls.txt" || fail "the live overlay's data image is not in rbd ls"
grep -qx 'pristine.t.overlays' "$tmpdir/objs.txt" || fail "no index object"
echo "    ok: rbd ls / rados ls agree: the purged instance is gone, the live one is there"

echo "== crash: kill -9 of a writer after acknowledged flushes"
check crash

echo "== fence: a live previous instance's lock broken, its later writes refused"
check fence

echo "== full: the OSD made full (its full ratio below its use), then not"
ceph_ratios_script "$tmpdir/ratios.sh"
check full "$tmpdir/ratios.sh 0.001 0.002 0.003" "$tmpdir/ratios.sh 0.85 0.90 0.95"

echo "== bench"
[ -x "$BUILD/bench/ovl_ceph_check" ] ||
	echo "    (the ASan build: make $BUILD/bench/ovl_ceph_check for numbers without sanitizers)"
check bench "${OVL_BENCH_S:-5}"
# the same load through librbd alone, for comparison: a plain image, and
# fresh clones with 4 MiB and 64 KiB objects (what a PC's overlay was)
rbd_bench() {
	timeout 120 rbd bench --io-type write --io-size 4K --io-threads 32 --io-pattern rand \
		--io-total 32M "$CEPH_POOL/$1" --rbd-cache=false >"$tmpdir/rbdbench.out" 2>&1 ||
		{ cat "$tmpdir/rbdbench.out"; fail "rbd bench $1"; }
	echo "bench: rbd bench $1 ($2), 4 KiB random writes QD32:" \
		"$(grep -E '^elapsed' "$tmpdir/rbdbench.out")"
}
timeout 30 rbd create --size 32M "$CEPH_POOL/pristine.t.plain" || fail "rbd create"
rbd_bench pristine.t.plain "plain thin image"
timeout 30 rbd clone "$CEPH_POOL/pristine.t.golden@v1" "$CEPH_POOL/pristine.t.clone4m" ||
	fail "rbd clone"
rbd_bench pristine.t.clone4m "fresh clone, 4 MiB objects"
timeout 30 rbd clone "$CEPH_POOL/pristine.t.golden@v1" "$CEPH_POOL/pristine.t.clone64k" \
	--object-size 64K --stripe-unit 64K --stripe-count 1 >/dev/null || fail "rbd clone 64K"
rbd_bench pristine.t.clone64k "fresh clone, 64 KiB objects"

ceph_data_objects "$PREFIX" >"$tmpdir/golden.after"
cmp -s "$tmpdir/golden.before" "$tmpdir/golden.after" ||
	{ diff "$tmpdir/golden.before" "$tmpdir/golden.after"; fail "the golden's data objects changed"; }
[ "$(snap_sha)" = "$SHA" ] || fail "the golden snapshot's content changed"
echo "    ok: the golden's data objects and snapshot are as they were"
echo "PASS"
