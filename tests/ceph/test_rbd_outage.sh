#!/usr/bin/env bash
# Issue 14: Ceph faults as a PC sees them through iSCSI, its overlay kept
# in Ceph (storage/ovl_ceph.h; tests/ceph/rbd_faults.py does the I/O and
# the checks):
#   full  the OSD made full (its full ratio below its use): a WRITE gets
#         CHECK CONDITION 07/27/07 (SPACE ALLOCATION FAILED WRITE PROTECT),
#         never a hang or a broken overlay; once space is back writes work
#         and the whole disk reads what was acknowledged;
#   osd   the OSD stopped (SIGSTOP by its PID) for a while and continued
#         while a PC writes and reads: by default its commands wait
#         (rados_osd_op_timeout 0, docs/images.md); with ceph-op-timeout
#         they fail (CHECK CONDITION) within a bound; never wrong data,
#         and the PC carries on afterwards (a new login with the bound).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs sha256sum python3
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
ceph_fail_shows_log

STATE=$tmpdir/state
MIB=8
ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
ceph_golden_conf "$MIB" "$STATE"
start_daemon_conf "$tmpdir/pristine.conf"

echo "== full"
ceph_ratios_script "$tmpdir/ratios.sh"
# the OSD holds ~30 MiB of its 1 GiB (memstore): 0.003 is well below that
timeout 180 python3 "$TOP/tests/ceph/rbd_faults.py" full "$PORT" "$tmpdir/golden.raw" \
	"$tmpdir/ratios.sh 0.001 0.002 0.003" "$tmpdir/ratios.sh 0.85 0.90 0.95" || fail "full"

echo "== osd stopped and continued: the PC waits (ceph-op-timeout 0, the default)"
timeout 180 python3 "$TOP/tests/ceph/rbd_faults.py" osd "$PORT" "$tmpdir/golden.raw" \
	"kill -STOP $CEPH_OSD_PID" "kill -CONT $CEPH_OSD_PID" 8 30 iqn.2024-01.test.pristine:pc2 wait \
	|| fail "osd, wait"
stop_daemon

echo "== osd stopped and continued: ceph-op-timeout = 3, the PC gets errors, then carries on"
sed -i "/^ceph-id = /a ceph-op-timeout = 3" "$tmpdir/pristine.conf"
start_daemon_conf "$tmpdir/pristine.conf"
timeout 180 python3 "$TOP/tests/ceph/rbd_faults.py" osd "$PORT" "$tmpdir/golden.raw" \
	"kill -STOP $CEPH_OSD_PID" "kill -CONT $CEPH_OSD_PID" 10 8 iqn.2024-01.test.pristine:pc3 error \
	|| fail "osd, error"
stop_daemon
[ "$(snap_sha)" = "$SHA" ] || fail "the golden snapshot's content changed"
echo "    ok: the golden snapshot is unchanged"
echo "PASS"
