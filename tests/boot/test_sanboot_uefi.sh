#!/usr/bin/env bash
# A real UEFI diskless client: QEMU (pc, TCG) with OVMF and the UEFI driver
# in Debian's iPXE ROM (efi-e1000.rom) does DHCP and TFTP from QEMU's
# user-mode network (restrict=on), runs an iPXE script and sanboots from
# pristined (10.0.2.100:3260 -> socat -> 127.0.0.1:$PORT), as
# test_sanboot.sh does for BIOS.
#
# The image is the demo disk of `make run` (demo/mkimage.sh): an MBR, one
# EFI system partition (type 0xef, FAT made with mkfs.fat, files put with
# mtools) holding \EFI\BOOT\BOOTX64.EFI = demo/uefi.c, which finds the
# disk through the firmware's Block I/O protocol, reads its counter sector
# (LBA 1), writes it back plus one and prints PRISTINE-DEMO-BOOTS=1 on the
# serial port.  So this checks the whole path of a UEFI client: iPXE's EFI
# block device over iSCSI, the firmware's partition and FAT drivers, the
# loading of an executable from the target, and a write into the client's
# overlay.  Run in the default overlay mode; the image file must stay
# byte-identical.
. "$(dirname "$0")/../lib/common.sh"

LUN=0
BOOT_WAIT=${BOOT_WAIT:-180}	# seconds allowed for the boot to report
ROM=/usr/lib/ipxe/qemu/efi-e1000.rom
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
BOOT_IQN=iqn.2024-01.test.pristine:uefipc

for tool in qemu-system-x86_64 socat cc as ld mkfs.fat mmd mcopy cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
for f in "$ROM" "$OVMF_CODE" "$OVMF_VARS"; do
	[ -r "$f" ] || skip "$f missing (packages ipxe-qemu, ovmf)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

. "$(dirname "$0")/../lib/qemu.sh"

# The demo disk: 16 MiB, the EFI system partition from LBA 2048.
img=$tmpdir/disk.raw
sh "$TOP/demo/mkimage.sh" "$img" || fail "demo/mkimage.sh"
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
	grep -a -q 'PRISTINE-DEMO-\(BOOTS\|ERROR\)' "$serial" && break
	kill -0 "$QPID" 2>/dev/null || break
	sleep 0.5
done
echo "after $((SECONDS - start)) s, serial output (escape sequences removed):"
sed -e 's/\x1b\[[0-9;=]*[A-Za-z]//g' -e 's/\r$//' "$serial" | grep -a -v '^[[:space:]]*$' | sed 's/^/    | /'
kill_qemu
result=$(grep -a -o 'PRISTINE-DEMO-\(BOOTS=[0-9]*\|ERROR.*\)' "$serial" | head -n 1 | tr -d '\r')
[ "$result" = PRISTINE-DEMO-BOOTS=1 ] && ok=1
[ $ok -eq 1 ] || cat "$tmpdir/qemu.log"
daemon_alive
echo "pristined log: login keys the UEFI iPXE proposed, and the session:"
grep -E 'login key|logged in' "$DLOG" | head -n 60 | sed 's/^/    | /'
stop_daemon
[ $ok -eq 1 ] || fail "no PRISTINE-DEMO-BOOTS=1 on the serial port within $BOOT_WAIT s (got '$result')"
cmp "$img" "$tmpdir/before.raw" || fail "the golden image changed during a UEFI boot"
echo "UEFI sanboot OK, image unchanged"
echo PASS
