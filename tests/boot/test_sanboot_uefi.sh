#!/usr/bin/env bash
# A real UEFI diskless client: QEMU (pc, TCG) with OVMF and the UEFI driver
# in Debian's iPXE ROM (efi-e1000.rom) does DHCP and TFTP from QEMU's
# user-mode network (restrict=on), runs an iPXE script and sanboots from
# pristined (10.0.2.100:3260 -> socat -> 127.0.0.1:$PORT), as
# test_sanboot.sh does for BIOS.
#
# The image is a disk with an MBR, one EFI system partition (type 0xef,
# FAT made with mkfs.fat, files put with mtools) holding
# \EFI\BOOT\BOOTX64.EFI = tests/boot/uefiapp.S, which prints
# PRISTINE-UEFI-OK and powers off.  So this checks the whole read path of
# a UEFI client: iPXE's EFI block device over iSCSI, the firmware's
# partition and FAT drivers, the loading of an executable from the target.
# (Writes are covered by the BIOS test.)  Run in the default overlay mode;
# the image file must stay byte-identical.
. "$(dirname "$0")/../lib/common.sh"

LUN=0
BOOT_WAIT=${BOOT_WAIT:-180}	# seconds allowed for the boot to report
ROM=/usr/lib/ipxe/qemu/efi-e1000.rom
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
BOOT_IQN=iqn.2024-01.test.pristine:uefipc

for tool in qemu-system-x86_64 socat as ld python3 mkfs.fat mmd mcopy cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
for f in "$ROM" "$OVMF_CODE" "$OVMF_VARS"; do
	[ -r "$f" ] || skip "$f missing (packages ipxe-qemu, ovmf)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

. "$(dirname "$0")/../lib/qemu.sh"

# The UEFI application.
as --64 -o "$tmpdir/app.o" "$(dirname "$0")/uefiapp.S" || fail "assembling uefiapp.S"
ld -m i386pep --subsystem 10 -e efi_main -o "$tmpdir/BOOTX64.EFI" "$tmpdir/app.o" || fail "linking the UEFI application"

# 16 MiB disk: MBR, partition 1 = EFI system partition from LBA 2048.
part=$tmpdir/esp.img
mkfs.fat -C -n PRISTINE "$part" $((15 * 1024)) >/dev/null || fail "mkfs.fat"
MTOOLS_SKIP_CHECK=1 mmd -i "$part" ::/EFI ::/EFI/BOOT || fail "mmd"
MTOOLS_SKIP_CHECK=1 mcopy -i "$part" "$tmpdir/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI || fail "mcopy"
img=$tmpdir/disk.raw
python3 - "$part" "$img" <<'PY'
import struct, sys
part = open(sys.argv[1], "rb").read()
mbr = bytearray(512)
mbr[446:462] = bytes([0, 0xfe, 0xff, 0xff, 0xef, 0xfe, 0xff, 0xff]) + struct.pack("<II", 2048, len(part) // 512)
mbr[510:512] = b"\x55\xaa"
with open(sys.argv[2], "wb") as f:
    f.write(mbr)
    f.write(bytes(2048 * 512 - 512))
    f.write(part)
PY
cp "$img" "$tmpdir/before.raw"

# -v debug: the daemon logs every login key the initiator sent.
start_daemon --image "$img" --state "$tmpdir/state" -v debug
echo "pristined on port $PORT, target $TARGET"
mkdir -p "$tmpdir/tftp"
printf '#!ipxe\ndhcp\nset initiator-iqn %s\nsanboot iscsi:10.0.2.100:::%s:%s\n' \
	"$BOOT_IQN" "$LUN" "$TARGET" >"$tmpdir/tftp/boot.ipxe"
sed 's/^/    | /' "$tmpdir/tftp/boot.ipxe"
cp "$OVMF_VARS" "$tmpdir/vars.fd"

serial=$tmpdir/serial.log
: >"$serial"
timeout -k 5 $((BOOT_WAIT + 60)) qemu-system-x86_64 -M pc -m 256 -nodefaults \
	-display none -vga std -no-reboot \
	-drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE" \
	-drive "if=pflash,format=raw,file=$tmpdir/vars.fd" \
	-serial "file:$serial" \
	-netdev "user,id=n0,restrict=on,tftp=$tmpdir/tftp,bootfile=boot.ipxe,guestfwd=tcp:10.0.2.100:3260-cmd:socat - TCP:127.0.0.1:$PORT" \
	-device "e1000,netdev=n0,romfile=$ROM" \
	>"$tmpdir/qemu.log" 2>&1 &
QPID=$!
start=$SECONDS
ok=0
while [ $((SECONDS - start)) -lt "$BOOT_WAIT" ]; do
	grep -a -q 'PRISTINE-UEFI-OK' "$serial" && { ok=1; break; }
	kill -0 "$QPID" 2>/dev/null || break
	sleep 0.5
done
echo "after $((SECONDS - start)) s, serial output (escape sequences removed):"
sed -e 's/\x1b\[[0-9;=]*[A-Za-z]//g' -e 's/\r$//' "$serial" | grep -a -v '^[[:space:]]*$' | sed 's/^/    | /'
kill_qemu
[ $ok -eq 1 ] || cat "$tmpdir/qemu.log"
daemon_alive
echo "pristined log: login keys the UEFI iPXE proposed, and the session:"
grep -E 'login key|logged in' "$DLOG" | head -n 60 | sed 's/^/    | /'
stop_daemon
[ $ok -eq 1 ] || fail "no PRISTINE-UEFI-OK on the serial port within $BOOT_WAIT s"
cmp "$img" "$tmpdir/before.raw" || fail "the golden image changed during a UEFI boot"
echo "UEFI sanboot OK, image unchanged"
echo PASS
