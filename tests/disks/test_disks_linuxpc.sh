#!/usr/bin/env bash
# Issue 17, "what it must show" 1: the Linux diskless client mounts its
# extra disks and each disk's policy holds across a reboot.
#
# One pristined (a configuration file, no Ceph) with a boot endpoint; the
# image lab (LUN 0: tests/cluster/linuxpc_lib.sh's ext4 root that counts
# its boots) gives every PC of it three extra disks, each a bare ext4 with
# a /golden file, one per policy and each set a different way:
#   LUN 1 games     overlay          (the default of disk-policy)
#   LUN 2 scratch   discard-on-boot  (the attachment's :POLICY)
#   LUN 3 docs      read-only        ([image docs] disk-policy)
# A PC is a QEMU guest (SeaBIOS, Debian's iPXE ROM, user network with
# restrict=on): its iPXE script first sends the PC's boot request to the
# boot endpoint (imgfetch of boot.ipxe?mac=..: the moment the daemon
# knows the PC boots, as a sanbooting PC's chain), then hooks LUN 0
# (sanhook, which leaves an iBFT) and boots Debian's kernel and the
# initramfs over TFTP; the initramfs logs in from the iBFT (iscsistart),
# the kernel's scan finds LUN 0..3, the root's init mounts LUN 1..3,
# prints what it finds and appends "<pc> count <boot count>" to each
# disk's /log (see linuxpc_lib.sh for the console lines).  Checked:
#   - boot 1 of pc1: every LUN found; the root on LUN 0 (count 0); games
#     and scratch mounted read-write, written; docs write-protected
#     (the kernel's ro flag), mounted read-only, the write refused;
#   - pc1 offline, a mere login (qemu-img, as pc1) still reads both
#     writes: discard-on-boot waits for a boot; a write to LUN 3 from
#     here answers DATA PROTECT;
#   - boot 2 of pc1 (a new QEMU, a new boot request): LUN 0 kept its
#     count (1), games kept pc1's line, scratch lost it, docs unchanged;
#   - boot 1 of pc2 (another MAC and initiator): its root at count 0 and
#     none of pc1's lines on any disk; then read from outside (qemu-img
#     per LUN, debugfs): each PC's games disk holds its own lines only;
#   - client show lists the four disks with their policies; the four
#     golden files' sha256 never change; the daemon stops cleanly.
# Each boot takes ~30-40 s under TCG here (LINUXPC_WAIT bounds it).
. "$(dirname "$0")/../lib/common.sh"
for tool in qemu-img jq curl sha256sum debugfs e2fsck; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
sanboot_check_tools
. "$TOP/tests/cluster/linuxpc_lib.sh"
linuxpc_check_tools
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

LINUXPC_WAIT=${LINUXPC_WAIT:-150}
STATE=$tmpdir/state
P=iqn.2024-01.test.pristine
PC1=$P:disks-pc1 PC2=$P:disks-pc2
MAC1=52:54:00:00:17:01 MAC2=52:54:00:00:17:02
TGT=iqn.2026-11.org.pristine:lab
NET=10.0.2
SRV=$NET.100
DISKS="1,2,3"

linuxpc_build "$tmpdir/lp"
linuxpc_disk "$tmpdir/lab.raw" 48
linuxpc_data_disk "$tmpdir/games.raw" 16 games-v1
linuxpc_data_disk "$tmpdir/scratch.raw" 16 scratch-v1
linuxpc_data_disk "$tmpdir/docs.raw" 16 docs-v1
declare -A SHA=()
for i in lab games scratch docs; do SHA[$i]=$(sha256sum <"$tmpdir/$i.raw"); done
golden_untouched() {
	local i
	for i in lab games scratch docs; do
		[ "$(sha256sum <"$tmpdir/$i.raw")" = "${SHA[$i]}" ] || fail "the golden file of $i changed"
	done
	echo "    ok: the golden files of lab, games, scratch and docs are unchanged (sha256)"
}

PORT=$(free_port)
BOOTPORT=$(free_port)
cat >"$tmpdir/pristine.conf" <<EOF
[server]
listen = 127.0.0.1:$PORT
state = $STATE
boot-listen = 127.0.0.1:$BOOTPORT
boot-portal = $SRV:3260

[defaults]
enroll = deny

[image lab]
path = $tmpdir/lab.raw
disks = games scratch:discard-on-boot, docs

[image games]
path = $tmpdir/games.raw

[image scratch]
path = $tmpdir/scratch.raw

[image docs]
path = $tmpdir/docs.raw
disk-policy = read-only

[client pc1]
initiator = $PC1
mac = $MAC1
image = lab
policy = persistent

[client pc2]
initiator = $PC2
mac = $MAC2
image = lab
policy = persistent
EOF
start_daemon_conf "$tmpdir/pristine.conf"
wait_boot_endpoint
echo "pristined: iSCSI 127.0.0.1:$PORT, boot endpoint 127.0.0.1:$BOOTPORT; lab + games, scratch, docs"

# The TFTP folder every PC boots from: the kernel, the initramfs and one
# iPXE script per PC (its bootfile).
mkdir -p "$tmpdir/tftp"
cp "$tmpdir/lp/vmlinuz" "$tmpdir/lp/initrd.img" "$tmpdir/tftp/"
for n in 1 2; do
	ini=PC$n
	printf '%s\n' '#!ipxe' dhcp \
		"imgfetch --name endpoint http://$SRV/boot.ipxe?mac=\${mac:hexhyp}&uuid=\${uuid}&ip=\${ip}" \
		'imgfree endpoint' \
		"set initiator-iqn ${!ini}" \
		"sanhook iscsi:$SRV:::0:$TGT" \
		"kernel vmlinuz console=ttyS0 panic=1 linuxpc.luns=4 linuxpc.data=$DISKS linuxpc.name=pc$n" \
		'initrd initrd.img' boot >"$tmpdir/tftp/pc$n.ipxe"
done

# endpoint_asked INI: how many boot requests of INI the endpoint answered.
endpoint_asked() { grep -c "boot: $1 (MAC [0-9a-f:]*) from 127.0.0.1: sanboot $TGT via $SRV:3260" "$DLOG"; }

# linux_boot N LABEL: PC N boots once (QEMU in the background, QPID),
# LINUXPC_WAIT seconds at most for its root's LINUXPC-SYNCED line; fails on
# an error line, a panic or a timeout, and unless the boot endpoint got
# the PC's request.  SERIAL is its console; the guest is left running.
linux_boot() {
	local n=$1 label=$2 dir=$tmpdir/pc$1-$2 asked mac=MAC$1 ini=PC$1
	mkdir -p "$dir"
	asked=$(endpoint_asked "${!ini}")
	SERIAL=$dir/serial.log
	: >"$SERIAL"
	timeout -k 5 $((LINUXPC_WAIT + 120)) qemu-system-x86_64 -M pc -m 512 -nodefaults \
		-display none -vga std -no-reboot -boot n -uuid "5a5a5a5a-0000-4000-8000-0000000017$n$n" \
		-monitor "unix:$dir/mon.sock,server=on,wait=off" \
		-serial "file:$SERIAL" \
		-netdev "user,id=n0,restrict=on,net=$NET.0/24,tftp=$tmpdir/tftp,bootfile=pc$n.ipxe,guestfwd=tcp:$SRV:80-cmd:socat - TCP:127.0.0.1:$BOOTPORT,guestfwd=tcp:$SRV:3260-cmd:socat - TCP:127.0.0.1:$PORT" \
		-device "e1000,netdev=n0,mac=${!mac},romfile=$SANBOOT_ROM" \
		>"$dir/qemu.log" 2>&1 &
	QPID=$!
	linuxpc_await "$QPID" "$dir" "[pc$n $label]" ||
		{ tail -n 30 "$DLOG"; fail "pc$n $label did not reach its root's init and sync"; }
	[ "$(endpoint_asked "${!ini}")" -gt "$asked" ] ||
		{ tail -n 30 "$DLOG"; fail "pc$n $label: the boot endpoint did not answer its boot request"; }
}
# serial_has PATTERN: the console of the last boot has a line PATTERN
# (ERE); its lines end in CR LF.
serial_has() { tr -d '\r' <"$SERIAL" | grep -a -q -E "$1"; }
must() { serial_has "$1" || fail "$2 (no console line /$1/)"; }
# dev_of LUN: the guest's disk for LUN (LINUXPC-LUN line of the last boot).
dev_of() { tr -d '\r' <"$SERIAL" | sed -n "s|^LINUXPC-LUN $1 /dev/\(sd[a-z]*\)\$|\1|p" | head -n 1; }
# luns_found: every LUN 0..3 is a disk of the guest.
luns_found() {
	local l
	for l in 0 1 2 3; do
		[ -n "$(dev_of $l)" ] || fail "the guest's kernel did not find LUN $l"
	done
	echo "    ok: the kernel found LUN 0..3 ($(dev_of 0) $(dev_of 1) $(dev_of 2) $(dev_of 3))"
	must "^LINUXPC-ROOT [0-9]+ /dev/$(dev_of 0)1 / ext4 " "the root is not LUN 0's ext4 partition"
}
# data_line LUN MODE RO GOLDEN LAST: the root's init found that on LUN.
data_line() {
	must "^LINUXPC-DATA $1 /dev/$(dev_of "$1") $2 ro=$3 golden=$4 last=$5\$" \
		"LUN $1 was not mounted $2 (ro=$3) with golden=$4 last=$5"
}

# log_of INI LUN: the /log file of LUN as initiator INI reads it from
# outside (qemu-img, debugfs), "none" without one.
log_of() {
	local f=$tmpdir/lun.raw out
	rm -f "$f"
	timeout -k 5 120 qemu-img convert --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TGT,lun=$2,initiator-name=$1" \
		-O raw "$f" >"$tmpdir/dump.log" 2>&1 || { cat "$tmpdir/dump.log"; fail "qemu-img read of LUN $2 as $1 failed"; }
	# the guest synced but never unmounted: its last metadata may still be
	# in the journal only, which debugfs does not read (replay it here)
	e2fsck -f -y -E journal_only "$f" >"$tmpdir/fsck.log" 2>&1
	debugfs -R 'stat /golden' "$f" >/dev/null 2>&1 || { cat "$tmpdir/fsck.log"; fail "LUN $2 as $1: no ext4 with /golden"; }
	out=$(debugfs -R 'cat /log' "$f" 2>/dev/null)
	if debugfs -R 'stat /log' "$f" 2>&1 | grep -q 'File not found'; then out=none; fi
	echo "$out" | tr '\n' ';' | sed 's/;$//'
}
expect_log() {	# INI LUN TEXT (lines joined with ;)
	local got
	got=$(log_of "$1" "$2")
	[ "$got" = "$3" ] || fail "LUN $2 as $1 holds the log '$got', expected '$3'"
	echo "    ok: LUN $2 as $1 holds the log '$got'"
}

echo "== the daemon lists each PC's four disks with their policies"
ctl --json client show pc1 | jq -c '.disks[] | {lun, image, policy, version}'
[ "$(ctl --json client show pc1 | jq -r '[.disks[] | "\(.lun):\(.image):\(.policy)"] | join(" ")')" = \
	"0:lab:persistent 1:games:overlay 2:scratch:discard-on-boot 3:docs:read-only" ] ||
	fail "client show pc1 does not list LUN 0..3 as configured"

echo "== boot 1 of pc1: it mounts LUN 1..3 and writes where it may"
linux_boot 1 boot1
luns_found
must "^LINUXPC-ROOT 0 " "pc1's first boot does not read boot count 0"
data_line 1 rw 0 games-v1 none
must "^LINUXPC-DATA-WROTE 1 pc1 count 0$" "pc1 could not write its games disk"
data_line 2 rw 0 scratch-v1 none
must "^LINUXPC-DATA-WROTE 2 pc1 count 0$" "pc1 could not write its scratch disk"
data_line 3 ro 1 docs-v1 none
must "^LINUXPC-DATA-RO 3$" "the write to the read-only docs disk was not refused"
must "^LINUXPC-SYNCED 1$" "pc1's boot 1 did not sync its count"
echo "    ok: games and scratch written; docs write-protected, mounted read-only, the write refused"
kill_qemu

echo "== pc1 offline: a mere login still finds both writes (discard-on-boot waits for a boot)"
expect_log "$PC1" 1 "pc1 count 0"
expect_log "$PC1" 2 "pc1 count 0"
expect_log "$PC1" 3 none
# The read-only LU itself refuses a write (not only the guest's kernel).
python3 - "$PORT" "$TGT" "$PC1" <<'PY' || fail "LUN 3 (read-only) did not answer a write with DATA PROTECT"
import os, sys
sys.path.insert(0, os.path.join(os.environ["TOP"], "tests", "lib"))
import iscsi_initiator as I
s = I.Session("127.0.0.1", int(sys.argv[1]), sys.argv[3], target_name=sys.argv[2], lun=3, timeout=20)
s.login()
s.ready()
t = s.command(I.cdb_write10(0, 1), write_data=bytes(512))
sense = bytes(t.sense or b"")
key = (sense[1] if sense and sense[0] & 0x7f in (0x72, 0x73) else sense[2] if len(sense) > 2 else -1) & 0x0f
print("    write to LUN 3: status 0x%02x sense key %d" % (t.status, key))
s.logout()
sys.exit(0 if t.status == 2 and key == 7 else 1)
PY
echo "    ok: the read-only LUN 3 answers a write with DATA PROTECT"
golden_untouched

echo "== boot 2 of pc1 (a new boot request): each disk's policy"
linux_boot 1 boot2
luns_found
must "^LINUXPC-ROOT 1 " "pc1's boot disk (LUN 0) lost its boot count"
data_line 1 rw 0 games-v1 "pc1 count 0"
echo "    ok: overlay: the games disk kept pc1's write"
data_line 2 rw 0 scratch-v1 none
echo "    ok: discard-on-boot: the scratch disk came back as its golden"
data_line 3 ro 1 docs-v1 none
must "^LINUXPC-DATA-RO 3$" "the write to the read-only docs disk was not refused at boot 2"
must "^LINUXPC-DATA-WROTE 1 pc1 count 1$" "pc1 could not write its games disk at boot 2"
must "^LINUXPC-DATA-WROTE 2 pc1 count 1$" "pc1 could not write its scratch disk at boot 2"
must "^LINUXPC-SYNCED 2$" "pc1's boot 2 did not sync its count"
echo "    ok: LUN 0 kept its count; read-only: docs unchanged"
kill_qemu

echo "== boot 1 of pc2 (another PC of lab): none of pc1's writes"
linux_boot 2 boot1
luns_found
must "^LINUXPC-ROOT 0 " "pc2 reads a boot count that is not its own"
data_line 1 rw 0 games-v1 none
data_line 2 rw 0 scratch-v1 none
data_line 3 ro 1 docs-v1 none
must "^LINUXPC-DATA-WROTE 1 pc2 count 0$" "pc2 could not write its games disk"
must "^LINUXPC-SYNCED 1$" "pc2's boot 1 did not sync its count"
echo "    ok: pc2 sees neither pc1's boot count nor its lines"
kill_qemu

echo "== from outside: each PC's disks hold its own writes only"
expect_log "$PC1" 1 "pc1 count 0;pc1 count 1"
expect_log "$PC1" 2 "pc1 count 1"
expect_log "$PC2" 1 "pc2 count 0"
expect_log "$PC2" 2 "pc2 count 0"
expect_log "$PC2" 3 none
[ "$(grep -c "boot: $PC1 (MAC" "$DLOG")" = 2 ] && [ "$(grep -c "boot: $PC2 (MAC" "$DLOG")" = 1 ] ||
	fail "the boot endpoint did not answer exactly pc1's two and pc2's one boot request"
golden_untouched

daemon_alive
stop_daemon
echo PASS
