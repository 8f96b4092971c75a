#!/usr/bin/env bash
# Issue 15, a real diskless PC booting through the cluster: QEMU (pc, TCG)
# with SeaBIOS and Debian's iPXE ROM (tests/lib/sanboot.sh) sanboots the
# portal of gw1 while the PC is placed on gw2.
#   - two gateways (cluster_lib.sh, 127.0.0.1 ports) whose cluster-address
#     (the TargetAddress of a redirect) is 10.0.2.101:3260 and
#     10.0.2.102:3260: addresses inside the guest's user network
#     (net=10.0.2.0/24, restrict=on), each forwarded by its own guestfwd
#     (cmd: one socat per connection) to its gateway's port only;
#   - the image (rbd/boot@v1) holds tests/boot/bootsector.S at LBA 0;
#   - the PC placed on gw2 first (gw1 drained for its first login);
#   - boot 1 at gw1's portal: gw1 answers 0x0101 TargetAddress=gw2, iPXE
#     logs in at gw2 and boots (PRISTINE-BOOT-OK on COM1); the session is
#     listed by gw2 (session list, cluster status), none by gw1; the iBFT
#     iPXE left in the guest's memory (found by its signature in
#     0x80000-0xfffff, as Linux finds it) names gw2's address;
#   - gw2 killed with -9 while the PC is online (its lock on the overlay
#     left in Ceph): once gw2 is dead to gw1, boot 2 at gw1's portal is
#     served by gw1 (it takes the overlay over from gw2), the PC boots and
#     its placement is gw1;
#   - gw2 started again: boot 3 at gw2's portal is redirected to gw1
#     (placement is sticky) and boots; the iBFT names gw1.
# Bounded: each boot is given SANBOOT_WAIT seconds (~10 s under TCG here).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon iscsi-inq jq
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
sanboot_check_tools
. "$TOP/tests/cluster/cluster_lib.sh"

PC=iqn.2024-01.test.cluster:diskless1
SANBOOT_WAIT=${SANBOOT_WAIT:-90}
NET=10.0.2
declare -a GWADDR
GWADDR[1]=$NET.101
GWADDR[2]=$NET.102

cluster_setup 2
trap 'kill_qemu; cluster_cleanup' EXIT
for i in 1 2; do
	echo "cluster-address = ${GWADDR[$i]}:3260" >>"$tmpdir/gw$i.conf"
done

sanboot_build
make_image "$tmpdir/boot.raw" 16
sanboot_image "$tmpdir/boot.raw"
timeout 60 rbd import --no-progress "$tmpdir/boot.raw" "$CEPH_POOL/boot" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/boot@v1" >/dev/null || fail "rbd snap create"

gw_start 1
gw_start 2
gwctl 1 image add boot --rbd "$CEPH_POOL/boot@v1"
TGT=$(echo "$OUT" | grep -o 'iqn[^ ]*' | head -n 1)
[ -n "$TGT" ] || { echo "$OUT"; fail "image add --rbd said no target"; }
# The records are shared in RADOS: gw2 lists the image within a second or so.
for _ in $(seq 1 30); do
	gwctl 2 --json image list
	echo "$OUT" | jq -e '.images[] | select(.name == "boot")' >/dev/null && break
	sleep 0.2
done
echo "$OUT" | jq -e '.images[] | select(.name == "boot")' >/dev/null || fail "gw2 does not list the image"

# gw_of IQN: the gateway the placement puts IQN on (as gw1 sees it).
gw_of() {
	gwctl 1 --json cluster status
	echo "$OUT" | jq -r --arg i "$1" '.pcs[] | select(.initiator == $i) | .gateway'
}
# state_of NAME [I]: the state of gateway NAME in gateway I's table (gw1's).
state_of() {
	gwctl "${2:-1}" --json cluster status
	echo "$OUT" | jq -r --arg g "$1" '.gateways[] | select(.name == $g) | .state'
}
# logins GW: how many logins of the PC gateway GW logged.
logins() { grep -c "logged in: initiator $PC " "$tmpdir/$1.log"; }

# pc_boot NAME GW: start the PC (QEMU, in the background; QPID) with the
# root path iscsi:GW's address, both gateways' addresses forwarded, and
# wait (SANBOOT_WAIT at most) for the boot sector's verdict on COM1:
# RESULT, "" on a timeout.  The guest is left running (its session open).
pc_boot() {
	local name=$1 gw=$2 dir=$tmpdir/pc-$1 start
	mkdir -p "$dir/tftp"
	printf '#!ipxe\ndhcp\nset initiator-iqn %s\nsanboot iscsi:%s:::0:%s\n' \
		"$PC" "${GWADDR[$gw]}" "$TGT" >"$dir/tftp/boot.ipxe"
	: >"$dir/serial.log"
	timeout -k 5 $((SANBOOT_WAIT + 120)) qemu-system-x86_64 -M pc -m 128 -nodefaults \
		-display none -vga std -no-reboot -boot n \
		-monitor "unix:$dir/mon.sock,server=on,wait=off" \
		-serial "file:$dir/serial.log" \
		-netdev "user,id=n0,restrict=on,net=$NET.0/24,tftp=$dir/tftp,bootfile=boot.ipxe,guestfwd=tcp:${GWADDR[1]}:3260-cmd:socat - TCP:127.0.0.1:${GWPORT[1]},guestfwd=tcp:${GWADDR[2]}:3260-cmd:socat - TCP:127.0.0.1:${GWPORT[2]}" \
		-device "e1000,netdev=n0,romfile=$SANBOOT_ROM" \
		>"$dir/qemu.log" 2>&1 &
	QPID=$!
	start=$SECONDS
	RESULT=""
	while [ $((SECONDS - start)) -lt "$SANBOOT_WAIT" ]; do
		RESULT=$(grep -a -o 'PRISTINE-BOOT-\(OK\|ERR [A-Z?] [0-9a-f]*\)' "$dir/serial.log" | tail -n 1)
		[ -n "$RESULT" ] && break
		kill -0 "$QPID" 2>/dev/null || break
		sleep 0.5
	done
	echo "[boot $name] at gw$gw's portal ${GWADDR[$gw]}: '${RESULT:-no result}' after $((SECONDS - start)) s"
	sed 's/^/    | /' "$dir/serial.log"
	if [ "$RESULT" != PRISTINE-BOOT-OK ]; then
		kill -0 "$QPID" 2>/dev/null && sanboot_screen "$dir/mon.sock"
		cat "$dir/qemu.log"
		tail -n 15 "$tmpdir/gw1.log" "$tmpdir/gw2.log"
		fail "boot $name reported '${RESULT:-nothing}', expected PRISTINE-BOOT-OK"
	fi
}

# ibft_target NAME: the target address (IP:PORT) and name of the iBFT in
# the running guest's memory (saved through the monitor; the table is
# found by its signature on a 16-byte boundary in 0x80000-0xfffff and
# its checksum checked), e.g. "10.0.2.102:3260 iqn...".
ibft_target() {
	local dir=$tmpdir/pc-$1 mem=$tmpdir/pc-$1/low.bin
	rm -f "$mem"
	echo "pmemsave 0x80000 0x80000 \"$mem\"" | timeout 5 socat - "UNIX-CONNECT:$dir/mon.sock" >/dev/null 2>&1
	for _ in $(seq 1 30); do [ "$(stat -c %s "$mem" 2>/dev/null)" = 524288 ] && break; sleep 0.1; done
	python3 - "$mem" <<'PY'
import struct, sys
mem = open(sys.argv[1], "rb").read()
for off in range(0, len(mem) - 48, 16):
    if mem[off:off + 4] != b"iBFT":
        continue
    length = struct.unpack_from("<I", mem, off + 4)[0]
    tab = mem[off:off + length]
    if length < 48 or len(tab) != length or sum(tab) % 256:
        continue
    # control structure at 48: header(6) extensions(2) initiator(2) nic0 target0 ...
    target0 = struct.unpack_from("<H", tab, 48 + 12)[0]
    if not target0 or tab[target0] != 4:
        continue
    ip = tab[target0 + 6:target0 + 22]
    port = struct.unpack_from("<H", tab, target0 + 22)[0]
    nlen, noff = struct.unpack_from("<HH", tab, target0 + 34)
    addr = ".".join(str(b) for b in ip[12:]) if ip[:12] == b"\0" * 10 + b"\xff\xff" else ip.hex()
    print("%s:%d %s" % (addr, port, tab[noff:noff + nlen].decode()))
    sys.exit(0)
print("no iBFT")
PY
}

echo "== the PC is placed on gw2 (gw1 drained for its first login)"
gwctl 1 cluster drain gw1
# as gw2 sees it (it reads the table back every beat)
for _ in $(seq 1 20); do
	[ "$(state_of gw1 2)" = draining ] && break
	sleep 0.2
done
[ "$(state_of gw1 2)" = draining ] || fail "gw2 does not see gw1 draining"
# at gw2's own port: a redirect's TargetAddress (10.0.2.x) is reachable
# from the guest only
pc_inq 2 "$PC" || { tail -n 20 "$tmpdir/gw1.log" "$tmpdir/gw2.log"; fail "$PC cannot log in at gw2"; }
gwctl 2 cluster drain gw1 --undo
[ "$(gw_of "$PC")" = gw2 ] || fail "$PC is placed on '$(gw_of "$PC")', not gw2"
for _ in $(seq 1 20); do
	[ "$(state_of gw1)" = up ] && break
	sleep 0.2
done
[ "$(state_of gw1)" = up ] || fail "gw1 is not up again after the undrain"
echo "    ok: $PC on gw2, both gateways up"

echo "== boot 1: iPXE at gw1's portal follows the redirect to gw2 and boots"
b1=$(logins gw1)
b2=$(logins gw2)
r1=$(grep -c "login of $PC redirected to ${GWADDR[2]}:3260" "$tmpdir/gw1.log")
pc_boot one 1
[ "$(grep -c "login of $PC redirected to ${GWADDR[2]}:3260" "$tmpdir/gw1.log")" -gt "$r1" ] ||
	fail "gw1 did not redirect $PC to ${GWADDR[2]}:3260"
[ "$(logins gw2)" -gt "$b2" ] || fail "gw2 did not serve $PC"
[ "$(logins gw1)" = "$b1" ] || fail "gw1 served $PC although it is placed on gw2"
gwctl 2 --json session list
echo "$OUT" | jq -e --arg i "$PC" '.sessions[] | select(.initiator == $i and .type == "normal")' >/dev/null ||
	{ echo "$OUT"; fail "gw2 does not list the PC's session"; }
gwctl 1 --json session list
echo "$OUT" | jq -e --arg i "$PC" '[.sessions[] | select(.initiator == $i)] | length == 0' >/dev/null ||
	{ echo "$OUT"; fail "gw1 lists a session of the PC"; }
# gw1's table shows the PC online on gw2 (gw2's next beat counts it)
for _ in $(seq 1 20); do
	gwctl 1 --json cluster status
	echo "$OUT" | jq -e '.gateways[] | select(.name == "gw2" and .pcs == 1)' >/dev/null && break
	sleep 0.2
done
echo "$OUT" | jq -e '.gateways[] | select(.name == "gw2" and .pcs == 1 and .sessions >= 1)' >/dev/null ||
	{ echo "$OUT"; fail "gw1's table does not show the PC online on gw2"; }
echo "$OUT" | jq -e '.gateways[] | select(.name == "gw1" and .pcs == 0)' >/dev/null ||
	{ echo "$OUT"; fail "gw1's table shows a PC online on gw1"; }
gwctl 1 cluster status
echo "$OUT" | sed 's/^/    /'
[ "$(gw_of "$PC")" = gw2 ] || fail "$PC is no longer placed on gw2"
IBFT=$(ibft_target one)
echo "    iBFT target: $IBFT"
[ "$IBFT" = "${GWADDR[2]}:3260 $TGT" ] ||
	fail "the iBFT names '$IBFT', not gw2's ${GWADDR[2]}:3260 (the redirect's TargetAddress)"
echo "    ok: redirected by gw1, booted from gw2, session on gw2, iBFT names gw2"

echo "== kill -9 gw2 while the PC is online"
gw_kill 2
kill_qemu
for _ in $(seq 1 $((DEAD_AFTER * 5 + 20))); do
	[ "$(state_of gw2)" = dead ] && break
	sleep 0.2
done
[ "$(state_of gw2)" = dead ] || fail "gw2 is not shown dead after $DEAD_AFTER s"

echo "== boot 2 at gw1's portal: served by gw1"
b1=$(logins gw1)
pc_boot two 1
[ "$(logins gw1)" -gt "$b1" ] || fail "gw1 did not serve $PC"
grep -q "taking over from gateway gw2" "$tmpdir/gw1.log" || fail "gw1 did not say it took $PC over from gw2"
[ "$(gw_of "$PC")" = gw1 ] || fail "$PC is placed on '$(gw_of "$PC")' after gw2's death, not gw1"
gwctl 1 --json session list
echo "$OUT" | jq -e --arg i "$PC" '.sessions[] | select(.initiator == $i and .type == "normal")' >/dev/null ||
	{ echo "$OUT"; fail "gw1 does not list the PC's session"; }
IBFT=$(ibft_target two)
echo "    iBFT target: $IBFT"
[ "$IBFT" = "${GWADDR[1]}:3260 $TGT" ] || fail "the iBFT names '$IBFT', not gw1's ${GWADDR[1]}:3260"
kill_qemu
echo "    ok: booted from gw1, which took the PC over from the dead gw2"

echo "== gw2 back; boot 3 at gw2's portal is redirected to gw1 (sticky placement)"
gw_start 2
for _ in $(seq 1 30); do
	[ "$(state_of gw2)" = up ] && break
	sleep 0.3
done
[ "$(state_of gw2)" = up ] || fail "gw2 did not rejoin"
b1=$(logins gw1)
b2=$(logins gw2)
r2=$(grep -c "login of $PC redirected to ${GWADDR[1]}:3260" "$tmpdir/gw2.log")
pc_boot three 2
[ "$(grep -c "login of $PC redirected to ${GWADDR[1]}:3260" "$tmpdir/gw2.log")" -gt "$r2" ] ||
	fail "gw2 did not redirect $PC to gw1"
[ "$(logins gw1)" -gt "$b1" ] || fail "gw1 did not serve $PC after the redirect"
[ "$(logins gw2)" = "$b2" ] || fail "gw2 served $PC although it is placed on gw1"
IBFT=$(ibft_target three)
echo "    iBFT target: $IBFT"
[ "$IBFT" = "${GWADDR[1]}:3260 $TGT" ] || fail "the iBFT names '$IBFT', not gw1's ${GWADDR[1]}:3260"
kill_qemu
echo "    ok: redirected by gw2, booted from gw1"

gw_stop 2
gw_stop 1
echo PASS
