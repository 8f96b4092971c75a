#!/usr/bin/env bash
# Issue 15, the Linux diskless client through the cluster: a QEMU PC
# (SeaBIOS, Debian's iPXE ROM, user network restrict=on) hooks the LUN at
# gw1's portal (sanhook, which leaves an iBFT), loads Debian's kernel and
# an initramfs (tests/cluster/linuxpc_lib.sh) that logs in again from
# the iBFT with iscsistart and switch_roots into the LUN's ext4 partition,
# whose init counts its boots in a file and syncs.  The PC is placed on
# gw2 (gw1 drained for its first login):
#   - boot 1: gw1 redirects iPXE to gw2 (10.0.2.102, its cluster-address);
#     the iBFT names gw2, so the kernel's session (open-iscsi's ISID
#     00023d...) logs in at gw2 directly, with no redirect; the root is
#     /dev/sda1, ext4, boot count 0, and the next count is synced;
#   - gw2 killed with -9 while the PC is online; once it is dead to gw1,
#     boot 2 at gw1's portal is served by gw1 (iPXE and the kernel, the
#     iBFT names gw1), which takes the overlay over: the root reads boot
#     count 1, the write synced through gw2 before its death.
# Each boot takes ~40 s under TCG here (LINUXPC_WAIT bounds it).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon iscsi-inq jq
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
sanboot_check_tools
. "$TOP/tests/cluster/linuxpc_lib.sh"
linuxpc_check_tools
. "$TOP/tests/cluster/cluster_lib.sh"

PC=iqn.2024-01.test.cluster:linuxpc1
LINUXPC_WAIT=${LINUXPC_WAIT:-150}
NET=10.0.2
declare -a GWADDR
GWADDR[1]=$NET.101
GWADDR[2]=$NET.102

cluster_setup 2
trap 'kill_qemu; cluster_cleanup' EXIT
for i in 1 2; do
	echo "cluster-address = ${GWADDR[$i]}:3260" >>"$tmpdir/gw$i.conf"
done

linuxpc_build "$tmpdir/lp"
linuxpc_disk "$tmpdir/linux.raw" 48
timeout 60 rbd import --no-progress "$tmpdir/linux.raw" "$CEPH_POOL/linux" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/linux@v1" >/dev/null || fail "rbd snap create"

gw_start 1
gw_start 2
gwctl 1 image add linux --rbd "$CEPH_POOL/linux@v1"
TGT=$(echo "$OUT" | grep -o 'iqn[^ ]*' | head -n 1)
[ -n "$TGT" ] || { echo "$OUT"; fail "image add --rbd said no target"; }
for _ in $(seq 1 30); do
	gwctl 2 --json image list
	echo "$OUT" | jq -e '.images[] | select(.name == "linux")' >/dev/null && break
	sleep 0.2
done
echo "$OUT" | jq -e '.images[] | select(.name == "linux")' >/dev/null || fail "gw2 does not list the image"

# state_of NAME [I]: the state of gateway NAME in gateway I's table (gw1's).
state_of() {
	gwctl "${2:-1}" --json cluster status
	echo "$OUT" | jq -r --arg g "$1" '.gateways[] | select(.name == $g) | .state'
}
gw_of() {
	gwctl 1 --json cluster status
	echo "$OUT" | jq -r --arg i "$1" '.pcs[] | select(.initiator == $i) | .gateway'
}
# logins GW [ISID-PREFIX]: the PC's logins gateway GW logged (with that ISID).
logins() { grep -c "logged in: initiator $PC isid ${2:-}" "$tmpdir/$1.log"; }
redirects() { grep -c "login of $PC redirected to $2:3260" "$tmpdir/$1.log"; }

# linux_boot NAME GW: the PC (QEMU, in the background; QPID) hooks the LUN
# at GW's address, boots Linux from TFTP; waits (LINUXPC_WAIT at most) for
# its root's LINUXPC-SYNCED line; fails on an error or a timeout.  The
# guest is left running.  SERIAL is its console.
linux_boot() {
	local name=$1 gw=$2 dir=$tmpdir/pc-$1
	mkdir -p "$dir/tftp"
	cp "$tmpdir/lp/vmlinuz" "$tmpdir/lp/initrd.img" "$dir/tftp/"
	printf '#!ipxe\ndhcp\nset initiator-iqn %s\nsanhook iscsi:%s:::0:%s\nkernel vmlinuz console=ttyS0 panic=1\ninitrd initrd.img\nboot\n' \
		"$PC" "${GWADDR[$gw]}" "$TGT" >"$dir/tftp/boot.ipxe"
	SERIAL=$dir/serial.log
	: >"$SERIAL"
	timeout -k 5 $((LINUXPC_WAIT + 120)) qemu-system-x86_64 -M pc -m 512 -nodefaults \
		-display none -vga std -no-reboot -boot n \
		-monitor "unix:$dir/mon.sock,server=on,wait=off" \
		-serial "file:$SERIAL" \
		-netdev "user,id=n0,restrict=on,net=$NET.0/24,tftp=$dir/tftp,bootfile=boot.ipxe,guestfwd=tcp:${GWADDR[1]}:3260-cmd:socat - TCP:127.0.0.1:${GWPORT[1]},guestfwd=tcp:${GWADDR[2]}:3260-cmd:socat - TCP:127.0.0.1:${GWPORT[2]}" \
		-device "e1000,netdev=n0,romfile=$SANBOOT_ROM" \
		>"$dir/qemu.log" 2>&1 &
	QPID=$!
	linuxpc_await "$QPID" "$dir" "[boot $name] at gw$gw's portal ${GWADDR[$gw]}" || {
		tail -n 15 "$tmpdir/gw1.log" "$tmpdir/gw2.log"
		fail "boot $name of the Linux PC did not reach its root's init and sync"
	}
}
# serial_has PATTERN: the console of the last boot has a line PATTERN (ERE).
# (the console's lines end in CR LF)
serial_has() { tr -d '\r' <"$SERIAL" | grep -a -q -E "$1"; }

echo "== the PC is placed on gw2 (gw1 drained for its first login)"
gwctl 1 cluster drain gw1
for _ in $(seq 1 20); do
	[ "$(state_of gw1 2)" = draining ] && break
	sleep 0.2
done
[ "$(state_of gw1 2)" = draining ] || fail "gw2 does not see gw1 draining"
pc_inq 2 "$PC" || { tail -n 20 "$tmpdir/gw2.log"; fail "$PC cannot log in at gw2"; }
gwctl 2 cluster drain gw1 --undo
for _ in $(seq 1 20); do
	[ "$(state_of gw1)" = up ] && [ "$(state_of gw1 2)" = up ] && break
	sleep 0.2
done
[ "$(state_of gw1 2)" = up ] || fail "gw1 is not up again after the undrain"
[ "$(gw_of "$PC")" = gw2 ] || fail "$PC is placed on '$(gw_of "$PC")', not gw2"

echo "== boot 1 at gw1's portal: iPXE redirected to gw2, Linux logs in at gw2 from the iBFT"
b1=$(logins gw1)
b2=$(logins gw2)
k2=$(logins gw2 00023d)
r1=$(redirects gw1 "${GWADDR[2]}")
linux_boot one 1
[ "$(redirects gw1 "${GWADDR[2]}")" -gt "$r1" ] || fail "gw1 did not redirect $PC to gw2"
[ "$(logins gw1)" = "$b1" ] || fail "gw1 served a login of $PC, which is placed on gw2"
[ "$(logins gw2 00023d)" -gt "$k2" ] || fail "no login of the kernel's initiator (ISID 00023d...) at gw2"
[ "$(logins gw2)" -gt $((b2 + 1)) ] || fail "gw2 did not serve both iPXE and the kernel"
! grep -q "login of $PC redirected" "$tmpdir/gw2.log" || fail "gw2 redirected a login of $PC"
serial_has "^LINUXPC-IBFT node.conn\[0\].address = ${GWADDR[2]}\$" || fail "the iBFT does not name gw2's ${GWADDR[2]}"
serial_has "^LINUXPC-IBFT node.name = $TGT\$" || fail "the iBFT does not name the target $TGT"
serial_has "^LINUXPC-SESSION address ${GWADDR[2]}\$" || fail "the kernel's session is not connected to ${GWADDR[2]}"
serial_has "^LINUXPC-ROOT 0 /dev/sda1 / ext4 " || fail "the root is not the LUN's ext4 at boot count 0"
serial_has "^LINUXPC-SYNCED 1" || fail "boot 1 did not sync its count"
gwctl 2 --json session list
[ "$(echo "$OUT" | jq --arg i "$PC" '[.sessions[] | select(.initiator == $i and .type == "normal")] | length')" -ge 1 ] ||
	{ echo "$OUT"; fail "gw2 does not list the PC's session"; }
echo "    ok: iPXE redirected by gw1; iPXE and the kernel served by gw2; ext4 root on the LUN"

echo "== kill -9 gw2 while the Linux PC is online"
gw_kill 2
kill_qemu
for _ in $(seq 1 $((DEAD_AFTER * 5 + 20))); do
	[ "$(state_of gw2)" = dead ] && break
	sleep 0.2
done
[ "$(state_of gw2)" = dead ] || fail "gw2 is not shown dead after $DEAD_AFTER s"

echo "== boot 2 at gw1's portal: served by gw1, the count synced through gw2 is there"
b1=$(logins gw1 00023d)
linux_boot two 1
[ "$(logins gw1 00023d)" -gt "$b1" ] || fail "the kernel's login was not served by gw1"
grep -q "taking over from gateway gw2" "$tmpdir/gw1.log" || fail "gw1 did not say it took $PC over from gw2"
serial_has "^LINUXPC-IBFT node.conn\[0\].address = ${GWADDR[1]}\$" || fail "the iBFT does not name gw1's ${GWADDR[1]}"
serial_has "^LINUXPC-SESSION address ${GWADDR[1]}\$" || fail "the kernel's session is not connected to ${GWADDR[1]}"
serial_has "^LINUXPC-ROOT 1 /dev/sda1 / ext4 " || fail "boot 2 does not read the count boot 1 synced through gw2"
serial_has "^LINUXPC-SYNCED 2" || fail "boot 2 did not sync its count"
[ "$(gw_of "$PC")" = gw1 ] || fail "$PC is placed on '$(gw_of "$PC")', not gw1"
kill_qemu
echo "    ok: gw1 took the PC over; its synced write read back"

gw_stop 1
echo PASS
