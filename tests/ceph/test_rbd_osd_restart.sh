#!/usr/bin/env bash
# Issue 14: the OSD stopped with SIGTERM and started again (by this test,
# by its PID; a bluestore OSD, whose objects survive the restart) while a
# PC writes, flushes and reads back through iSCSI, its overlay kept in
# Ceph (storage/ovl_ceph.h): with the default ceph-op-timeout = 0 its commands wait for the
# OSD and go on, never reading wrong data, each within a bound; afterwards
# the whole disk reads what was acknowledged (tests/ceph/rbd_faults.py
# osd; test_rbd_outage.sh stops the OSD with SIGSTOP instead).
. "$(dirname "$0")/../lib/common.sh"
for tool in ceph-mon ceph-osd ceph rados rbd sha256sum python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/ceph.sh"
fail() { echo "FAIL: $*"; [ -f "${DLOG:-/nonexistent}" ] && tail -n 40 "$DLOG"; exit 1; }

STATE=$tmpdir/state
MIB=8
ceph_start "$tmpdir/ceph" bluestore
# The OSD this test starts again is stopped by the trap too.
trap '[ -s "$tmpdir/osd.pid" ] && CEPH_OSD_PID=$(cat "$tmpdir/osd.pid"); ceph_stop; cleanup_common' EXIT
ceph_golden_conf "$MIB" "$STATE"
start_daemon_conf "$tmpdir/pristine.conf"

# SIGTERM to the OSD and wait until it is gone (a zombie of this shell
# counts as gone); then the same command line as tests/lib/ceph.sh's.
cat >"$tmpdir/osd-stop.sh" <<EOS
#!/bin/sh
pid=\$(cat "$tmpdir/osd.pid" 2>/dev/null || echo $CEPH_OSD_PID)
kill -TERM "\$pid"
for i in \$(seq 1 300); do
	[ -d /proc/\$pid ] && ! grep -q '^State:.*Z' /proc/\$pid/status 2>/dev/null || exit 0
	sleep 0.1
done
echo "osd \$pid did not stop in 30 s"; exit 1
EOS
cat >"$tmpdir/osd-start.sh" <<EOS
#!/bin/sh
CEPH_ARGS= ceph-osd -c "$CEPH_CONF" -i 0 -f >>"$CEPH_DIR/osd.out" 2>&1 &
echo \$! >"$tmpdir/osd.pid"
EOS
chmod +x "$tmpdir/osd-stop.sh" "$tmpdir/osd-start.sh"

echo "== osd restarted (SIGTERM, started again after 3 s): the PC waits"
timeout 240 python3 "$TOP/tests/ceph/rbd_faults.py" osd "$PORT" "$tmpdir/golden.raw" \
	"$tmpdir/osd-stop.sh" "$tmpdir/osd-start.sh" 3 90 iqn.2024-01.test.pristine:pc1 wait \
	|| fail "osd restart"
CEPH_OSD_PID=$(cat "$tmpdir/osd.pid")
ceph_wait 60 ceph_osd_up || fail "osd.0 not up again"

stop_daemon
[ "$(snap_sha)" = "$SHA" ] || fail "the golden snapshot's content changed"
echo "    ok: the golden snapshot is unchanged"
echo "PASS"
