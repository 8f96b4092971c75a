#!/usr/bin/env bash
# A real diskless client: QEMU (pc, TCG) with SeaBIOS and Debian's iPXE ROM
# does DHCP and TFTP from QEMU's user-mode network (restrict=on: the guest
# reaches nothing but QEMU's own DHCP/TFTP and one forwarded address),
# loads an iPXE script and sanboots from pristined:
#     10.0.2.100:3260 (guestfwd) -> socat -> 127.0.0.1:$PORT
# The image's LBA 0 is tests/boot/bootsector.S: it reads LBA 1 (a marker
# the test put there) with INT 13h AH=42h, writes LBA 2 with AH=43h, reads
# it back, and reports PRISTINE-BOOT-OK or PRISTINE-BOOT-ERR on COM1.
#
# Runs:
#   overlay    the default mode: boot must report OK (its write lands in the
#              client's overlay); the image file must stay byte-identical;
#              after a daemon restart the same initiator (iPXE's
#              initiator-iqn, set by the script) reads its LBA 2 back, and
#              another initiator still sees the original LBA 2; after
#              `pristinectl client reset` the PC sees the original LBA 2.
#   read-only  pristined --read-only: the boot sector must start and read
#              LBA 1, its write must be refused (ERR W, write-protected LUN),
#              and the image file must stay byte-identical.
# Not run: a header/data digest variant - iPXE's initiator only ever offers
# HeaderDigest=None and DataDigest=None, so digests cannot be tested with it.
#
# On a timeout the test prints the guest's VGA text screen (iPXE's
# messages), read from guest memory through the QEMU monitor.
. "$(dirname "$0")/../lib/common.sh"

LUN=0
MIB=16
BOOT_WAIT=${BOOT_WAIT:-120}	# seconds allowed for one boot to report
ROM=/usr/lib/ipxe/qemu/pxe-e1000.rom
MARKER1=PRISTINE-TEST-LBA1-MARKER-5d3e91	# as in bootsector.S
MARKER2=PRISTINE-WROTE-LBA2-BY-INT13-43h
BOOT_IQN=iqn.2024-01.test.pristine:bootpc

for tool in qemu-system-x86_64 socat as ld python3 sha256sum cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -r "$ROM" ] || skip "$ROM missing (package ipxe-qemu)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

. "$(dirname "$0")/../lib/qemu.sh"

# Assemble the boot sector.
as --32 -o "$tmpdir/bs.o" "$(dirname "$0")/bootsector.S" || fail "assembling bootsector.S"
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$tmpdir/bs.bin" "$tmpdir/bs.o" || fail "linking boot sector"
[ "$(stat -c %s "$tmpdir/bs.bin")" -eq 512 ] || fail "boot sector is not 512 bytes"

# screen: print the guest's 80x25 VGA text screen.
screen() {
	local mon=$tmpdir/mon.sock vga=$tmpdir/vga.bin
	rm -f "$vga"
	echo "pmemsave 0xb8000 4000 \"$vga\"" | timeout 5 socat - "UNIX-CONNECT:$mon" >/dev/null 2>&1
	for _ in $(seq 1 20); do [ -s "$vga" ] && break; sleep 0.1; done
	[ -s "$vga" ] || { echo "(could not read the guest screen)"; return; }
	echo "--- guest screen ---"
	python3 - "$vga" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
for r in range(25):
    line = bytes(d[(r * 80 + c) * 2] for c in range(80)).decode("cp437").rstrip()
    if line:
        print("    " + line)
PY
	echo "--------------------"
}

# boot NAME [pristined args]: one diskless boot; sets RESULT to the
# boot sector's last PRISTINE-BOOT-(OK|ERR ..) line.
boot() {
	local name=$1; shift
	local dir=$tmpdir/$name
	mkdir -p "$dir/tftp"
	img=$dir/disk.raw
	make_image "$img" "$MIB"
	python3 - "$img" "$tmpdir/bs.bin" "$MARKER1" <<'PY'
import sys
img, bs, m1 = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3].encode()
with open(img, "r+b") as f:
    f.write(bs)
    f.seek(512); f.write(m1)
PY
	cp "$img" "$dir/before.raw"

	# -v debug: the daemon logs every login key the initiator sent.
	start_daemon --image "$img" --state "$dir/state" -v debug "$@"
	echo "[$name] pristined on port $PORT, target $TARGET, args: $*"
	printf '#!ipxe\ndhcp\nset initiator-iqn %s\nsanboot iscsi:10.0.2.100:::%s:%s\n' \
		"$BOOT_IQN" "$LUN" "$TARGET" >"$dir/tftp/boot.ipxe"
	sed 's/^/    | /' "$dir/tftp/boot.ipxe"

	local serial=$dir/serial.log
	: >"$serial"
	timeout -k 5 $((BOOT_WAIT + 60)) qemu-system-x86_64 -M pc -m 128 -nodefaults \
		-display none -vga std -no-reboot -boot n \
		-monitor "unix:$tmpdir/mon.sock,server=on,wait=off" \
		-serial "file:$serial" \
		-netdev "user,id=n0,restrict=on,tftp=$dir/tftp,bootfile=boot.ipxe,guestfwd=tcp:10.0.2.100:3260-cmd:socat - TCP:127.0.0.1:$PORT" \
		-device "e1000,netdev=n0,romfile=$ROM" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		>"$dir/qemu.log" 2>&1 &
	QPID=$!
	local start=$SECONDS
	RESULT=""
	while [ $((SECONDS - start)) -lt "$BOOT_WAIT" ]; do
		RESULT=$(grep -a -o 'PRISTINE-BOOT-\(OK\|ERR [A-Z?] [0-9a-f]*\)' "$serial" | tail -n 1)
		[ -n "$RESULT" ] && break
		kill -0 "$QPID" 2>/dev/null || break
		sleep 0.5
	done
	echo "[$name] after $((SECONDS - start)) s, serial output:"
	sed 's/^/    | /' "$serial"
	if [ -z "$RESULT" ]; then
		kill -0 "$QPID" 2>/dev/null && screen
		cat "$dir/qemu.log"
	fi
	kill_qemu
	daemon_alive
	echo "[$name] pristined log: login keys iPXE proposed, and the session:"
	grep -E 'login key|logged in' "$DLOG" | head -n 60 | sed 's/^/    | /'
	stop_daemon
	[ -n "$RESULT" ] || fail "[$name] no PRISTINE-BOOT result on the serial port within $BOOT_WAIT s"
	grep -a -q 'PRISTINE-BOOT-START drive=80' "$serial" \
		|| fail "[$name] boot sector did not run from drive 0x80"
}

# Expected LBA 2 after the boot sector's write.
python3 - "$tmpdir/lba2.bin" "$MARKER2" <<'PY'
import sys
open(sys.argv[1], "wb").write(sys.argv[2].encode() + b"\x5a" * 480)
PY

# ---------------------------------------------------------------- overlay
boot overlay
[ "$RESULT" = PRISTINE-BOOT-OK ] || fail "[overlay] boot sector reported '$RESULT', expected PRISTINE-BOOT-OK"
cmp "$img" "$tmpdir/overlay/before.raw" || fail "[overlay] the golden image changed: a client wrote it"
echo "[overlay] image file unchanged after the client's INT 13h write"
# lba2 INITIATOR OUT: LBA 2 as that initiator sees it.
lba2() {
	timeout -k 5 60 qemu-io -r --image-opts -c "read -v 1024 512" \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TARGET,lun=$LUN,initiator-name=$1" \
		>"$2.txt" 2>&1 || { cat "$2.txt"; fail "qemu-io read of LBA 2 as $1 failed"; }
	python3 - "$2.txt" "$2" <<'PY'
import sys, re
out = bytearray()
for line in open(sys.argv[1]):
    m = re.match(r"^[0-9a-f]{8}: ((?: [0-9a-f]{2}){1,16})", line)
    if m:
        out += bytes(int(x, 16) for x in m.group(1).split())
open(sys.argv[2], "wb").write(out)
PY
}
start_daemon --image "$img" --state "$tmpdir/overlay/state"
lba2 "$BOOT_IQN" "$tmpdir/pc.bin"
cmp "$tmpdir/pc.bin" "$tmpdir/lba2.bin" || fail "[overlay] after a restart the client does not read back its LBA 2 write"
lba2 iqn.2024-01.test.pristine:other "$tmpdir/other.bin"
dd if="$img" of="$tmpdir/orig2.bin" bs=512 skip=2 count=1 status=none
cmp "$tmpdir/other.bin" "$tmpdir/orig2.bin" || fail "[overlay] another initiator sees the boot client's write"
echo "[overlay] OK: the write persisted in the client's overlay, invisible to others"
# Restore-card reset of the (offline) PC: it must see the golden LBA 2 again.
CTL=${PRISTINECTL:-$BUILD/pristinectl}
if [ -x "$CTL" ]; then
	timeout 30 "$CTL" --state "$tmpdir/overlay/state" client reset "$BOOT_IQN" \
		|| fail "[overlay] pristinectl client reset $BOOT_IQN failed"
	lba2 "$BOOT_IQN" "$tmpdir/pc-reset.bin"
	cmp "$tmpdir/pc-reset.bin" "$tmpdir/orig2.bin" || fail "[overlay] after a reset the PC still sees its old write"
	echo "[overlay] OK: after pristinectl client reset the PC reads the golden LBA 2"
else
	echo "[overlay] reset not checked: $CTL not built"
fi
daemon_alive
stop_daemon

# ---------------------------------------------------------------- read-only
boot readonly --read-only
case $RESULT in
"PRISTINE-BOOT-ERR W "*) echo "[readonly] the write was refused: $RESULT";;
*) fail "[readonly] boot sector reported '$RESULT', expected a refused write (ERR W)";;
esac
cmp "$img" "$tmpdir/readonly/before.raw" || fail "[readonly] image file changed although exported --read-only"
echo "[readonly] OK: image file unchanged"

echo "(header/data digest variant not run: iPXE never offers digests)"
echo PASS
