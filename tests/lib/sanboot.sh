# tests/lib/sanboot.sh - a real diskless client for tests that boot one:
# QEMU (pc, TCG) with SeaBIOS and Debian's iPXE ROM sanboots an iSCSI
# target of a running pristined through QEMU's user-mode network
# (restrict=on; 10.0.2.100:3260 is forwarded by socat to 127.0.0.1:PORT).
# The disk's LBA 0 is tests/boot/bootsector.S (reads LBA 1, checks a
# marker, writes LBA 2, reports PRISTINE-BOOT-OK|ERR on COM1).
# Source after common.sh and qemu.sh.
#
#   sanboot_check_tools      skip (77) when QEMU, socat, binutils or the ROM miss
#   sanboot_build            assembles the boot sector into $SANBOOT_BS
#   sanboot_image FILE       writes the boot sector (LBA 0) and marker (LBA 1)
#   sanboot_lba2 FILE        the 512 bytes the boot sector writes to LBA 2
#   sanboot NAME PORT TARGET INITIATOR
#                            one boot; sets RESULT to the last
#                            PRISTINE-BOOT-(OK|ERR ..) line ("" on timeout)
SANBOOT_ROM=${SANBOOT_ROM:-/usr/lib/ipxe/qemu/pxe-e1000.rom}
SANBOOT_WAIT=${SANBOOT_WAIT:-120}
SANBOOT_MARKER1=PRISTINE-TEST-LBA1-MARKER-5d3e91	# as in bootsector.S
SANBOOT_MARKER2=PRISTINE-WROTE-LBA2-BY-INT13-43h
SANBOOT_BS=$tmpdir/bootsector.bin

sanboot_check_tools() {
	local tool
	for tool in qemu-system-x86_64 socat as ld python3; do
		command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
	done
	[ -r "$SANBOOT_ROM" ] || skip "$SANBOOT_ROM missing (package ipxe-qemu)"
}

sanboot_build() {
	as --32 -o "$tmpdir/bs.o" "$TOP/tests/boot/bootsector.S" || fail "assembling bootsector.S"
	ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$SANBOOT_BS" "$tmpdir/bs.o" \
		|| fail "linking the boot sector"
	[ "$(stat -c %s "$SANBOOT_BS")" -eq 512 ] || fail "boot sector is not 512 bytes"
}

sanboot_image() {
	python3 - "$1" "$SANBOOT_BS" "$SANBOOT_MARKER1" <<'PY'
import sys
img, bs, m1 = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3].encode()
with open(img, "r+b") as f:
    f.write(bs)
    f.seek(512); f.write(m1)
PY
}

sanboot_lba2() {
	python3 - "$1" "$SANBOOT_MARKER2" <<'PY'
import sys
open(sys.argv[1], "wb").write(sys.argv[2].encode() + b"\x5a" * 480)
PY
}

# The guest's 80x25 VGA text screen (iPXE's messages), through the monitor.
sanboot_screen() {
	local mon=$1 vga=$tmpdir/vga.bin
	rm -f "$vga"
	echo "pmemsave 0xb8000 4000 \"$vga\"" | timeout 5 socat - "UNIX-CONNECT:$mon" >/dev/null 2>&1
	for _ in $(seq 1 20); do [ -s "$vga" ] && break; sleep 0.1; done
	[ -s "$vga" ] || { echo "(could not read the guest screen)"; return; }
	python3 - "$vga" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
for r in range(25):
    line = bytes(d[(r * 80 + c) * 2] for c in range(80)).decode("cp437").rstrip()
    if line:
        print("    " + line)
PY
}

sanboot() {
	local name=$1 port=$2 target=$3 iqn=$4
	local dir=$tmpdir/sanboot-$name
	mkdir -p "$dir/tftp"
	printf '#!ipxe\ndhcp\nset initiator-iqn %s\nsanboot iscsi:10.0.2.100:::0:%s\n' \
		"$iqn" "$target" >"$dir/tftp/boot.ipxe"
	local serial=$dir/serial.log
	: >"$serial"
	timeout -k 5 $((SANBOOT_WAIT + 60)) qemu-system-x86_64 -M pc -m 128 -nodefaults \
		-display none -vga std -no-reboot -boot n \
		-monitor "unix:$dir/mon.sock,server=on,wait=off" \
		-serial "file:$serial" \
		-netdev "user,id=n0,restrict=on,tftp=$dir/tftp,bootfile=boot.ipxe,guestfwd=tcp:10.0.2.100:3260-cmd:socat - TCP:127.0.0.1:$port" \
		-device "e1000,netdev=n0,romfile=$SANBOOT_ROM" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		>"$dir/qemu.log" 2>&1 &
	QPID=$!
	local start=$SECONDS
	RESULT=""
	while [ $((SECONDS - start)) -lt "$SANBOOT_WAIT" ]; do
		RESULT=$(grep -a -o 'PRISTINE-BOOT-\(OK\|ERR [A-Z?] [0-9a-f]*\)' "$serial" | tail -n 1)
		[ -n "$RESULT" ] && break
		kill -0 "$QPID" 2>/dev/null || break
		sleep 0.5
	done
	echo "[boot $name] $iqn -> $target: '${RESULT:-no result}' after $((SECONDS - start)) s"
	sed 's/^/    | /' "$serial"
	if [ -z "$RESULT" ]; then
		kill -0 "$QPID" 2>/dev/null && sanboot_screen "$dir/mon.sock"
		cat "$dir/qemu.log"
	fi
	kill_qemu
}
