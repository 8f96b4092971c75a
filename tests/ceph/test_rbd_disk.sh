#!/usr/bin/env bash
# Issue 14, next step: writable RBD clones and snapshots (storage/rbd_disk.h)
# against a real single-node cluster (tests/lib/ceph.sh), through
# build/asan/rbd_disk_check (tests/ceph/rbd_disk_check.c; its header lists
# the checks of each phase):
#   setup  the parent image with a pattern and a hole, snapshot v1 made
#          half (unprotected) and mended by rbd_snap_ensure, called twice;
#   main   clones read through to the parent, writes read back, the other
#          clone unaffected, unmap reads zeros (also over parent data),
#          quota -> -ENOSPC with nothing changed, flush, first writes of
#          8 threads into the same fresh objects at once (none lost), a second open
#          refused (exclusive lock), reopen rebuilds the held objects from
#          Ceph, snap_drop -EBUSY while a clone (also a trashed one)
#          exists, image_copy equals the source and has no parent, trash
#          in constant time frees the name, purge removes our images;
#   full   the OSD made full (its full ratio below its use): writes give
#          -ENOSPC within a bound, never hang, the clone stays whole and
#          writes again once the ratio is back;
#   a holder of a clone killed -9 after a flushed write: a new open of
#          the clone succeeds (the time it takes is printed) and reads it;
#   sticky the checker's client blocklisted: the failed write puts the
#          disk in its sticky error (writes, unmaps, flushes -EIO at once),
#          reads of the golden side (another connection) go on.
# Around them, Ceph's own view: an image not ours in the trash is left
# there by the purge, and the parent snapshot's content (rbd export |
# sha256sum) is the same at the end.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs sha256sum
CHECKER=$BUILD/asan/rbd_disk_check
[ -x "$CHECKER" ] || skip "$CHECKER not built (make asan)"

t0=$SECONDS
ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
echo "ceph up in $((SECONDS - t0)) s: mon $CEPH_MON, pool $CEPH_POOL"

check() {
	ceph_checker rbd_disk_check "$CHECKER" "$@"
}

echo "== setup"
check setup
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/pristine.t.golden@v1" - | sha256sum; }
SHA=$(snap_sha)
# an image pristine did not make, in the trash: the purge must leave it
timeout 30 rbd create --size 4M "$CEPH_POOL/other" || fail "rbd create other"
timeout 30 rbd trash mv "$CEPH_POOL/other" || fail "rbd trash mv other"

echo "== main"
check main
timeout 30 rbd trash ls "$CEPH_POOL" | grep -q ' other$' || fail "the purge removed an image it did not make"
timeout 30 rbd ls "$CEPH_POOL" >"$tmpdir/ls.txt"
grep -q '^pristine.t.golden$' "$tmpdir/ls.txt" || fail "the parent is gone"

echo "== full"
# the full ratios, by a script the checker runs (system(3)) at its moment
ceph_ratios_script "$tmpdir/ratios.sh"
# the OSD holds ~30 MiB of its 1 GiB (memstore): 0.003 is well below that
check full "$tmpdir/ratios.sh 0.001 0.002 0.003" "$tmpdir/ratios.sh 0.85 0.90 0.95"

echo "== kill -9 of a clone's holder, then a new open"
"$CHECKER" "$CEPH_CONF" "$CEPH_POOL" hold >"$tmpdir/hold.out" 2>"$tmpdir/hold.err" &
HPID=$!
for _ in $(seq 1 300); do
	grep -q '^held$' "$tmpdir/hold.out" && break
	kill -0 "$HPID" 2>/dev/null || { cat "$tmpdir/hold.out" "$tmpdir/hold.err"; fail "hold died"; }
	sleep 0.1
done
grep -q '^held$' "$tmpdir/hold.out" || { kill -KILL "$HPID"; fail "hold did not open its clone"; }
kill -KILL "$HPID"
wait "$HPID" 2>/dev/null
check reopen

echo "== sticky"
cat >"$tmpdir/blocklist.sh" <<EOS
#!/bin/sh
export CEPH_ARGS="$CEPH_ARGS"
echo "\$1" >"$tmpdir/blocked"
timeout 20 ceph osd blocklist add "\$1" >/dev/null 2>&1
EOS
chmod +x "$tmpdir/blocklist.sh"
check sticky "$tmpdir/blocklist.sh"
timeout 20 ceph osd blocklist rm "$(cat "$tmpdir/blocked")" >/dev/null 2>&1 || fail "blocklist rm"

[ "$(snap_sha)" = "$SHA" ] || fail "the parent snapshot's content changed"
echo "    ok: the parent snapshot is as it was"
echo "PASS"
