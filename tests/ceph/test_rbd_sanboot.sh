#!/usr/bin/env bash
# Issue 14: a real diskless PC booting from an image on Ceph RBD, against
# a real single-node cluster (tests/lib/ceph.sh) started and stopped here.
# QEMU (pc, TCG) + SeaBIOS + Debian's iPXE ROM sanboots pristined
# (tests/lib/sanboot.sh); the golden is an RBD snapshot (rbd = POOL/IMAGE@SNAP)
# whose LBA 0 is tests/boot/bootsector.S: it reads LBA 1 (a marker), writes
# LBA 2 with INT 13h, reads it back and reports PRISTINE-BOOT-OK on COM1.
#   - it boots (OK); so does another PC from an image imported into Ceph
#     (image import --rbd of a qcow2 of the same disk);
#   - its write lands in its own overlay in Ceph (storage/ovl_ceph.h): a
#     marker object and a plain data image that rbd ls lists, rbd du
#     shows holds data, and whose export by Ceph has the boot sector's
#     LBA 2 at its place, while another PC reads the golden's;
#   - a reset (pristinectl client reset) gives the overlay a new instance
#     and the PC reads the golden's LBA 2 again; it boots again (OK);
#   - the golden snapshot's content and every one of its data objects (name,
#     size, mtime from the OSD) are unchanged.
# Bounded: each boot is given SANBOOT_WAIT seconds (~10 s under TCG here).
. "$(dirname "$0")/../lib/common.sh"
for tool in ceph-mon ceph-osd ceph rados rbd qemu-io jq sha256sum cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
sanboot_check_tools
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
PC=iqn.2024-01.test.pristine:bootpc
SANBOOT_WAIT=${SANBOOT_WAIT:-90}

ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')

sanboot_build
make_image "$tmpdir/golden.raw" 16
sanboot_image "$tmpdir/golden.raw"
sanboot_lba2 "$tmpdir/lba2.bin"
dd if="$tmpdir/golden.raw" of="$tmpdir/orig2.bin" bs=512 skip=2 count=1 status=none
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@gold" >/dev/null || fail "rbd snap create"
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/golden@gold" - | sha256sum; }
SNAP_SHA=$(snap_sha)
GPREFIX=$(timeout 30 rbd info --format json "$CEPH_POOL/golden" | jq -r .block_name_prefix)
objects() {
	ceph_data_objects "$GPREFIX"
}
objects >"$tmpdir/objects.before"
grep -q '^rbd_data\.' "$tmpdir/objects.before" || fail "no data objects of the golden listed"

PORT=$(free_port)
cat >"$tmpdir/pristine.conf" <<EOF
[server]
listen = 127.0.0.1:$PORT
state = $STATE
ceph-conf = $PCONF
ceph-id = pristine

[image golden]
rbd = $CEPH_POOL/golden@gold
EOF
start_daemon_conf "$tmpdir/pristine.conf"

# lba2 INITIATOR OUT: LBA 2 as that initiator reads it through iSCSI.
lba2() {
	dump "$1" "$tmpdir/whole.raw"
	dd if="$tmpdir/whole.raw" of="$2" bs=512 skip=2 count=1 status=none
}
# The PC's overlay (the store names its DIR: pristine.<uid>.v1.<initiator>)
# and its live data image (DIR.INST.data).
ovl_of_pc() { timeout 30 rados -p "$CEPH_POOL" ls | grep '^pristine\..*\.v1\.iqn\.2024-01\.test\.pristine%3abootpc$' || true; }
clone_of_pc() { local d; d=$(ovl_of_pc); [ -z "$d" ] || ovl_data "$d"; }

echo "== the PC boots from the RBD golden"
sanboot first "$PORT" "$GTARGET" "$PC"
daemon_alive
[ "$RESULT" = PRISTINE-BOOT-OK ] || { tail -n 30 "$DLOG"; fail "the boot reported '$RESULT', expected PRISTINE-BOOT-OK"; }
grep -a -q 'PRISTINE-BOOT-START drive=80' "$tmpdir/sanboot-first/serial.log" || fail "the boot sector did not run from drive 0x80"

echo "== its write is in its own overlay in Ceph"
OVL=$(ovl_of_pc)
CLONE=$(clone_of_pc)
[ -n "$CLONE" ] || { timeout 30 rbd ls -l "$CEPH_POOL"; fail "no data image of the PC's overlay in rbd ls"; }
CLONE_ID=$(ovl_inst "$OVL")
echo "    overlay: $OVL, data image $CLONE (instance $CLONE_ID)"
timeout 30 rbd info --format json "$CEPH_POOL/$CLONE" | jq -e 'has("parent") | not' >/dev/null \
	|| fail "$CLONE has a parent: a clone, not a plain image"
USED=$(timeout 30 rbd du --format json "$CEPH_POOL/$CLONE" | jq '[.images[] | select(.name == "'"$CLONE"'") | .used_size] | add')
echo "    rbd du: $USED bytes used"
[ "${USED:-0}" -gt 0 ] || fail "rbd du says the data image holds nothing"
lba2 "$PC" "$tmpdir/pc.bin"
cmp "$tmpdir/pc.bin" "$tmpdir/lba2.bin" || fail "the PC does not read back its LBA 2"
lba2 iqn.2024-01.test.pristine:other "$tmpdir/other.bin"
cmp "$tmpdir/other.bin" "$tmpdir/orig2.bin" || fail "another PC sees the boot PC's write"
timeout 60 rbd export --no-progress "$CEPH_POOL/$CLONE" "$tmpdir/clone.raw" >/dev/null || fail "rbd export of the data image"
dd if="$tmpdir/clone.raw" of="$tmpdir/clone2.bin" bs=512 skip=2 count=1 status=none
cmp "$tmpdir/clone2.bin" "$tmpdir/lba2.bin" || fail "Ceph's export of the data image does not hold the PC's LBA 2"
[ "$(snap_sha)" = "$SNAP_SHA" ] || fail "the golden snapshot changed after the boot"
echo "    ok: LBA 2 written into $CLONE, the golden snapshot unchanged"

echo "== a reset gives it the golden again"
ctl_ok client reset "$PC" --force
# The overlay's name stays; its instance changes (the old one's data
# image may already be removed by the background purge).
NEWID=$(ovl_inst "$OVL")
echo "    instance before the reset $CLONE_ID, now ${NEWID:-none}"
[ -n "$NEWID" ] && [ "$NEWID" != "$CLONE_ID" ] || fail "the overlay that holds the write is still the PC's disk after the reset"
echo "    left of the old instance: $(ovl_left "$OVL" "$CLONE_ID" | tr '\n' ' ')"
lba2 "$PC" "$tmpdir/pc-reset.bin"
cmp "$tmpdir/pc-reset.bin" "$tmpdir/orig2.bin" || fail "after the reset the PC still reads its old LBA 2"
echo "    ok: the PC reads the golden's LBA 2"
sanboot second "$PORT" "$GTARGET" "$PC"
[ "$RESULT" = PRISTINE-BOOT-OK ] || { tail -n 30 "$DLOG"; fail "the boot after the reset reported '$RESULT'"; }
[ -n "$(clone_of_pc)" ] || fail "no new data image after the second boot"
[ "$(clone_of_pc)" != "$CLONE" ] || fail "the second boot wrote into the old data image"

echo "== a PC boots an image imported into Ceph (image import --rbd)"
command -v qemu-img >/dev/null || fail "qemu-img missing"
qemu-img convert -f raw -O qcow2 "$tmpdir/golden.raw" "$tmpdir/golden.qcow2" || fail "qemu-img convert"
ctl_ok image import imported "$tmpdir/golden.qcow2" --rbd "$CEPH_POOL"
sanboot third "$PORT" iqn.2026-11.org.pristine:imported iqn.2024-01.test.pristine:pc2
[ "$RESULT" = PRISTINE-BOOT-OK ] || { tail -n 30 "$DLOG"; fail "the boot of the imported image reported '$RESULT'"; }
timeout 30 rbd ls "$CEPH_POOL" | grep -q '^pristine\..*\.v1\.iqn\.2024-01\.test\.pristine%3apc2\.[0-9a-f]*\.data$' \
	|| fail "no data image of pc2's overlay in rbd ls"
daemon_alive
stop_daemon

echo "== the golden is as it was, in Ceph's own view"
[ "$(snap_sha)" = "$SNAP_SHA" ] || fail "the golden snapshot's content changed"
objects >"$tmpdir/objects.after"
diff "$tmpdir/objects.before" "$tmpdir/objects.after" || fail "a data object of the golden changed (size or mtime)"
echo "    ok: $(wc -l <"$tmpdir/objects.after") objects unchanged"
echo PASS
