#!/usr/bin/env bash
# Issue 14: kill -9 of pristined while PCs write to their overlays on Ceph
# RBD loses no flushed write, and a restart serves within seconds (it
# breaks the exclusive locks of its dead predecessor, whose address it
# recorded in STATE/ceph-instance, instead of waiting out their watches);
# a lock held by a live other client is never broken.  The rounds and
# checks are tests/ceph/rbd_kill.py's (faultlib.py's Model); this script
# starts the single-node cluster (tests/lib/ceph.sh), imports the golden
# and checks that its snapshot never changed.
. "$(dirname "$0")/../lib/common.sh"
for tool in ceph-mon ceph-osd ceph rados rbd sha256sum python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
[ -x "$TOP/build/asan/rbd_lock_holder" ] || skip "rbd_lock_holder not built (make asan)"
. "$TOP/tests/lib/ceph.sh"

STATE=$tmpdir/state
MIB=8
ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
ceph_golden_conf "$MIB" "$STATE"

python3 "$TOP/tests/ceph/rbd_kill.py" "$tmpdir/pristine.conf" "$tmpdir/golden.raw" "$STATE" \
	"$PORT" "$CEPH_CONF" "$CEPH_POOL" || fail "rbd_kill.py"
[ "$(snap_sha)" = "$SHA" ] || fail "the golden snapshot's content changed"
echo "    ok: the golden snapshot is unchanged"
echo "PASS"
