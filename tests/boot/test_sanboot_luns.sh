#!/usr/bin/env bash
# A diskless PC with extra disks still boots from its LUN 0: QEMU (pc, TCG)
# with SeaBIOS and Debian's iPXE ROM sanboots its boot image while its
# target also carries two extra disks (src/lab/xdisk.h):
#     LUN 0  lab     the boot image (tests/boot/bootsector.S at LBA 0)
#     LUN 1  games   policy overlay, 4096-byte blocks
#     LUN 2  data    policy read-only
# What it shows:
#   - iPXE's sanboot of LUN 0 reports PRISTINE-BOOT-OK: the boot sector
#     read LBA 1 and wrote LBA 2 through INT 13h, on LUN 0 and nowhere else;
#   - none of the three image files changed (the write is in the PC's
#     overlay of its boot disk);
#   - afterwards, as the PC's initiator: REPORT LUNS lists 0, 1, 2; LBA 2
#     of LUN 0 holds the boot sector's write; LUN 1 and LUN 2 still read as
#     their own images (nothing of the boot landed there), LUN 2 refuses a
#     write (DATA PROTECT);
#   - an extra disk given while the PC is online (pristinectl client disk
#     add), then a second boot of the same PC: iPXE still boots from LUN 0,
#     which still holds its first boot's write.
# Config mode, the PC declared in a [client] section with its initiator
# (iPXE's initiator-iqn, set by the script).
. "$(dirname "$0")/../lib/common.sh"

for tool in cmp sha256sum; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
CTL=${PRISTINECTL:-$BUILD/pristinectl}
[ -x "$CTL" ] || skip "$CTL not built (make)"
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
sanboot_check_tools
sanboot_build

BOOT_IQN=iqn.2024-01.test.pristine:lunspc
T=iqn.2026-11.org.pristine:luns
STATE=$tmpdir/state
MIB=16

make_image "$tmpdir/lab.raw" "$MIB"
sanboot_image "$tmpdir/lab.raw"
make_image "$tmpdir/games.raw" 8
make_image "$tmpdir/data.raw" 4
make_image "$tmpdir/tools.raw" 4
make_image "$tmpdir/scratch.raw" 4
for i in lab games data tools scratch; do sha256sum "$tmpdir/$i.raw" >"$tmpdir/$i.sum"; done
sanboot_lba2 "$tmpdir/lba2.bin"

PORT=$(free_port)
cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
state = $STATE

[defaults]
enroll = deny

[image lab]
path = $tmpdir/lab.raw
target = $T
disks = games data:read-only

[image games]
path = $tmpdir/games.raw
block-size = 4096

[image data]
path = $tmpdir/data.raw

[image tools]
path = $tmpdir/tools.raw

[image scratch]
path = $tmpdir/scratch.raw

[client lunspc]
initiator = $BOOT_IQN
image = lab
CONF
start_daemon_conf "$tmpdir/p.conf"

# check_pc STAGE LUNS: as the PC's initiator, REPORT LUNS must list LUNS
# (e.g. "0 1 2"); LBA 2 of LUN 0 is the boot sector's write; each extra
# LUN reads as its image (LBA 0 and 3, in its own block size);
# LUN 2 (read-only) refuses a write.
check_pc() {
	python3 - "$TOP/tests/lib" "$PORT" "$T" "$BOOT_IQN" "$tmpdir" "$2" <<'PY' \
		|| fail "[$1] the PC's LUNs are not what they should be"
import struct, sys
sys.path.insert(0, sys.argv[1])
import iscsi_initiator as I
port, target, iqn, tmp, want = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
s = I.Session("127.0.0.1", port, initiator_name=iqn, target_name=target)
s.login()
luns = sorted(I.report_luns(s))
print("REPORT LUNS:", luns)
assert luns == [int(x) for x in want.split()], (luns, want)

def ready(lun):
    # a unit attention or two may be pending on a LUN (LUNs changed)
    for _ in range(5):
        t = s.command(I.cdb_test_unit_ready(), lun=lun)
        if t.status == I.GOOD:
            return
        assert t.status == I.CHECK_CONDITION and t.sense[2] & 0xf == 6, (lun, t.sense.hex())
    raise AssertionError("LUN %d not ready" % lun)

def block_size(lun):
    t = s.command(I.cdb_read_capacity10(), read_len=8, lun=lun)
    assert t.status == I.GOOD, (lun, t.sense.hex())
    return struct.unpack_from(">I", t.data, 4)[0]

ready(0)
t = s.command(I.cdb_read10(2, 1), read_len=512, lun=0)
assert t.status == I.GOOD, t.sense.hex()
assert bytes(t.data) == open(tmp + "/lba2.bin", "rb").read(), ("LUN 0 LBA 2", bytes(t.data[:40]))
images = {1: "games", 2: "data", 3: "tools"}
for lun in luns[1:]:
    ready(lun)
    bs = block_size(lun)
    img = open("%s/%s.raw" % (tmp, images[lun]), "rb").read()
    for lba in (0, 3):
        t = s.command(I.cdb_read10(lba, 1), read_len=bs, lun=lun)
        assert t.status == I.GOOD, (lun, lba, t.sense.hex())
        assert bytes(t.data) == img[lba * bs:(lba + 1) * bs], ("LUN %d LBA %d" % (lun, lba), bytes(t.data[:16]))
    print("LUN %d: %s, %d-byte blocks, reads as its image" % (lun, images[lun], bs))
bs = block_size(2)
t = s.command(I.cdb_write10(0, 1), write_data=b"\0" * bs, lun=2)
assert t.status == I.CHECK_CONDITION and t.sense[2] & 0xf == 7, ("write to read-only LUN 2", t.status, t.sense.hex())
s.logout()
PY
}

sanboot first "$PORT" "$T" "$BOOT_IQN"
daemon_alive
[ "$RESULT" = PRISTINE-BOOT-OK ] || { tail -n 40 "$DLOG"; fail "[first] boot sector reported '${RESULT:-nothing}', expected PRISTINE-BOOT-OK"; }
grep -a -q 'PRISTINE-BOOT-START drive=80' "$tmpdir/sanboot-first/serial.log" \
	|| fail "[first] boot sector did not run from drive 0x80"
echo "[first] iPXE booted LUN 0 with LUN 1 and 2 present"
check_pc first "0 1 2"

# A disk given while the PC is known (and may be online), then it boots
# again: LUN 0 is still its boot disk, with its first boot's write.
"$CTL" --state "$STATE" client disk add lunspc tools --policy read-only \
	|| fail "pristinectl client disk add lunspc tools failed"
sanboot second "$PORT" "$T" "$BOOT_IQN"
daemon_alive
[ "$RESULT" = PRISTINE-BOOT-OK ] || { tail -n 40 "$DLOG"; fail "[second] boot sector reported '${RESULT:-nothing}', expected PRISTINE-BOOT-OK"; }
echo "[second] iPXE booted LUN 0 with LUN 1, 2 and 3 present"
check_pc second "0 1 2 3"
# The ISID the SCSI layer knows iPXE by (IANA format, enterprise 10019):
# each boot's session had it (check_pc's sessions have random ones, 80..).
n=$(grep -c "initiator $BOOT_IQN isid 40002723[0-9a-f]\{4\} target" "$DLOG")
[ "$n" -ge 2 ] || { grep "initiator $BOOT_IQN isid" "$DLOG"; fail "the two boots' sessions did not come with iPXE's ISID 40002723xxxx"; }

# Online: a disk added, then removed, while the PC has an iPXE session (in
# the middle of booting) and an OS session.  The OS session is told once
# per change on LUN 0 (REPORTED LUNS DATA HAS CHANGED), and REPORT LUNS
# follows; the iPXE one is never told - its reads go on as if nothing
# happened (iPXE would fail the boot on a unit attention).
python3 - "$TOP/tests/lib" "$PORT" "$T" "$BOOT_IQN" "$CTL" "$STATE" <<'PY' || fail "[online] extra disk added/removed under live sessions"
import subprocess, sys
sys.path.insert(0, sys.argv[1])
import iscsi_initiator as I
port, target, iqn, ctl, state = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
ipxe = I.Session("127.0.0.1", port, initiator_name=iqn, target_name=target, isid=bytes.fromhex("40002723c0de"))
os_ = I.Session("127.0.0.1", port, initiator_name=iqn, target_name=target, isid=bytes.fromhex("00023d000001"))
ipxe.login()
os_.login()

def luns(s):
    return sorted(I.report_luns(s))

def read0(s, what):
    t = s.command(I.cdb_read10(1, 1), read_len=512, lun=0)
    assert t.status == I.GOOD, (what, t.status, t.sense.hex())
    assert bytes(t.data[:16]) == b"PRISTINE-TEST-LB", (what, bytes(t.data[:16]))

def told_once(s, what):
    t = s.command(I.cdb_read10(1, 1), read_len=512, lun=0)
    assert t.status == I.CHECK_CONDITION and t.sense[2] & 0xf == 6 and t.sense[12:14] == b"\x3f\x0e", \
        (what, "no REPORTED LUNS DATA HAS CHANGED", t.status, t.sense.hex())
    read0(s, what + " (after the unit attention)")

for s in (ipxe, os_):
    read0(s, "before")
for verb, want in (("add", [0, 1, 2, 3, 4]), ("remove", [0, 1, 2, 3])):
    subprocess.run([ctl, "--state", state, "client", "disk", verb, "lunspc", "scratch"], check=True)
    read0(ipxe, "iPXE after " + verb)
    told_once(os_, "OS after " + verb)
    assert luns(os_) == want, (verb, luns(os_), want)
    print("%s: iPXE's session read on, the OS's was told once; REPORT LUNS %s" % (verb, want))
read0(ipxe, "iPXE at the end")
ipxe.logout()
os_.logout()
PY
stop_daemon

for i in lab games data tools scratch; do
	sha256sum -c --quiet "$tmpdir/$i.sum" || fail "image $i changed: a client wrote the image itself"
done
echo "images unchanged"
echo PASS
