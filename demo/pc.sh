#!/bin/sh
# demo/pc.sh - starts a demo PC (QEMU) that boots from the network, against
# the pristined of `make run` on this host (make demo-pc runs it).
#
#   PC=N           which PC, 1..99 (default 1): MAC 52:54:00:de:00:NN, so the
#                  daemon enrolls it as pc-525400de00NN
#   UEFI=1         boot with UEFI firmware (OVMF) instead of the BIOS (SeaBIOS)
#   LISTEN, BOOT_LISTEN  as given to make run (default *:3260, *:8180): only
#                  their ports are used, on 127.0.0.1
#   PC_SERIAL      where the PC's serial port goes (default: this terminal,
#                  Ctrl-A X quits QEMU; e.g. file:PATH for scripts)
#   PC_DISPLAY     QEMU -display for its screen (default none; e.g.
#                  vnc=127.0.0.1:1, port 5901)
#
# The PC's network is QEMU's user-mode network with restrict=on: it reaches
# nothing but two ports forwarded to this host (through socat, one process
# per connection): 10.0.2.100:80 -> the boot endpoint, and
# 10.0.2.100:ISCSI_PORT -> the iSCSI portal.  DHCP hands it the boot file
# http://10.0.2.100/boot.ipxe; iPXE (Debian's ROM) chains it, and the
# script the daemon answers with sanboots the PC's own overlay of the demo
# image through 10.0.2.100 (the address the PC reached the endpoint at).
# The PC's firmware state (OVMF's variables) is thrown away when it stops.
# The shell is replaced by QEMU: the PID of this script is QEMU's.
set -eu
PC=${PC:-1}
case $PC in
[1-9] | [1-9][0-9]) ;;
*) echo "demo/pc.sh: PC must be 1..99" >&2; exit 2 ;;
esac
NN=$(printf %02d "$PC")
ISCSI_PORT=$(echo "${LISTEN:-*:3260}" | sed 's/.*://')
BOOT_PORT=$(echo "${BOOT_LISTEN:-*:8180}" | sed 's/.*://')
IPXE_DIR=/usr/lib/ipxe/qemu
OVMF_DIR=/usr/share/OVMF

for tool in qemu-system-x86_64 socat; do
	command -v "$tool" >/dev/null || { echo "demo/pc.sh: $tool missing (make demo-pc installs it)" >&2; exit 1; }
done
if [ "${UEFI:-0}" = 1 ]; then
	rom=$IPXE_DIR/efi-e1000.rom
	set -- -m 256 \
		-drive "if=pflash,format=raw,readonly=on,file=$OVMF_DIR/OVMF_CODE_4M.fd" \
		-drive "if=pflash,format=raw,snapshot=on,file=$OVMF_DIR/OVMF_VARS_4M.fd"
	firmware="UEFI (OVMF)"
	need="$rom $OVMF_DIR/OVMF_CODE_4M.fd $OVMF_DIR/OVMF_VARS_4M.fd"
else
	rom=$IPXE_DIR/pxe-e1000.rom
	set -- -m 128
	firmware="BIOS (SeaBIOS)"
	need=$rom
fi
for f in $need; do
	[ -r "$f" ] || { echo "demo/pc.sh: $f missing (make demo-pc installs it)" >&2; exit 1; }
done
# Without make run there is nothing to boot from: say so rather than
# leave a PC waiting on a silent serial port.
if ! socat -u OPEN:/dev/null "TCP:127.0.0.1:$BOOT_PORT,connect-timeout=3" 2>/dev/null; then
	echo "demo/pc.sh: nothing answers on 127.0.0.1:$BOOT_PORT: start \`make run\` first" \
		"(with the same LISTEN and BOOT_LISTEN), in another terminal" >&2
	exit 1
fi
fwd() { echo "guestfwd=tcp:10.0.2.100:$1-cmd:socat - TCP:127.0.0.1:$2"; }
net="user,id=n0,restrict=on,bootfile=http://10.0.2.100/boot.ipxe,$(fwd 80 "$BOOT_PORT"),$(fwd "$ISCSI_PORT" "$ISCSI_PORT")"
serial=${PC_SERIAL:-mon:stdio}
echo "demo PC $PC: $firmware, MAC 52:54:00:de:00:$NN (client pc-525400de00$NN);" \
	"boot endpoint 127.0.0.1:$BOOT_PORT, iSCSI 127.0.0.1:$ISCSI_PORT" >&2
[ "$serial" = mon:stdio ] &&
	echo "demo PC $PC: its serial port follows (the PC reports within a minute); Ctrl-A X stops it" >&2
exec qemu-system-x86_64 -M pc "$@" -nodefaults -vga std -display "${PC_DISPLAY:-none}" \
	-name "pristine demo PC $PC" -boot n -serial "$serial" \
	-netdev "$net" -device "e1000,netdev=n0,mac=52:54:00:de:00:$NN,romfile=$rom"
