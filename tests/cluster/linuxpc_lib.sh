# tests/cluster/linuxpc_lib.sh - a Linux diskless client for tests that
# boot one (sourced after common.sh): iPXE hooks the iSCSI disk
# (sanhook, which leaves an iBFT), loads Debian's kernel and an initramfs
# built here over TFTP; the initramfs logs in from the iBFT with
# open-iscsi's iscsistart (-N brings the NIC up as the iBFT says, -b logs
# in to the iBFT's target), mounts the LUN's ext4 partition and
# switch_roots into it; the root's /sbin/init (busybox) prints
# LINUXPC-ROOT <its boot count> on the console (COM1), writes the next
# count, syncs, prints LINUXPC-SYNCED and waits.
#
#   linuxpc_check_tools      skip (77) when the kernel, iscsistart, busybox,
#                            mkfs.ext4 or cpio miss (deps.sh, set "linuxpc")
#   linuxpc_build DIR        DIR/vmlinuz, DIR/initrd.img (gzip'd newc cpio)
#   linuxpc_disk FILE MIB    a disk: MBR, one ext4 partition (1 MiB on) with
#                            the root (busybox, /sbin/init, boot count 0)
#   linuxpc_data_disk FILE MIB TEXT
#                            a data disk for LUN 1..: a bare ext4 holding
#                            /golden (TEXT), no log yet
#   linuxpc_await QPID DIR LABEL
#                            waits for the guest QPID (QEMU, its console
#                            DIR/serial.log, its monitor DIR/mon.sock, its
#                            output DIR/qemu.log) to reach its root's init
#                            and sync; 1 when it did not (what it showed
#                            printed)
# Extra LUNs (issue 17), chosen on the kernel command line:
#   linuxpc.luns=N        the initramfs waits for LUN 0..N-1 (default 1)
#                         and prints LINUXPC-LUN <lun> <dev> for each LUN
#                         the kernel found; the root is LUN 0's partition
#   linuxpc.data=L,L..    the root's init mounts each LUN L's ext4 on
#                         /mnt/L (read-only when the disk is) and prints
#                         LINUXPC-DATA L <dev> <rw|ro> ro=<the disk's ro
#                         flag> golden=<its /golden> last=<the last line of
#                         its /log, or none>; then appends
#                         "<name> count <boot count>" to /log and syncs:
#                         LINUXPC-DATA-WROTE L <that line>, or
#                         LINUXPC-DATA-RO L when the write is refused
#   linuxpc.name=NAME     the name in those lines (default pc)
# all before its LINUXPC-SYNCED line.
# The kernel Debian's linux-image-amd64 depends on (the one deps.sh
# installed), else the newest under /lib/modules.
LINUXPC_KVER=${LINUXPC_KVER:-$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
	sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')}
[ -n "$LINUXPC_KVER" ] && [ -d "/lib/modules/$LINUXPC_KVER" ] ||
	LINUXPC_KVER=$(ls /lib/modules 2>/dev/null | sort -V | tail -n 1)
LINUXPC_KERNEL=/boot/vmlinuz-$LINUXPC_KVER

linuxpc_check_tools() {
	local tool
	for tool in iscsistart busybox mkfs.ext4 cpio gzip ldd python3; do
		command -v "$tool" >/dev/null || skip "$tool not installed (tests/lib/deps.sh, linuxpc)"
	done
	[ -n "$LINUXPC_KVER" ] && [ -r "$LINUXPC_KERNEL" ] && [ -r "/lib/modules/$LINUXPC_KVER/modules.dep" ] ||
		skip "no Debian kernel with modules (linux-image-amd64)"
	busybox --list | grep -q '^switch_root$' || skip "busybox without switch_root"
}

# The modules the initramfs loads, each after those it depends on
# (modules.dep), as paths under /lib/modules/KVER.
linuxpc_modules() {
	python3 - "/lib/modules/$LINUXPC_KVER" <<'PY'
import os, sys
base = sys.argv[1]
deps = {}
for line in open(os.path.join(base, "modules.dep")):
    mod, _, rest = line.partition(":")
    deps[mod] = rest.split()
byname = {os.path.basename(m).split(".ko")[0].replace("-", "_"): m for m in deps}
wanted = ["crc32c_generic", "libcrc32c", "crct10dif_generic", "crc64_rocksoft_generic",
          "e1000", "sd_mod", "iscsi_tcp", "iscsi_ibft", "ext4"]
order, seen = [], set()
def add(m):
    if m in seen:
        return
    seen.add(m)
    for d in deps[m]:
        add(d)
    order.append(m)
for w in wanted:
    if w in byname:
        add(byname[w])
    elif w in ("e1000", "sd_mod", "iscsi_tcp", "iscsi_ibft", "ext4"):
        sys.exit("module %s not found" % w)
print("\n".join(order))
PY
}

# copy_bin ROOT FILE: FILE and the shared libraries it needs into ROOT.
linuxpc_copy_bin() {
	local root=$1 f=$2 lib
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
	for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

linuxpc_build() {
	local dir=$1 root=$1/initrd m mods
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,newroot,etc/iscsi,lib/modules} || fail "initrd dirs"
	cp "$LINUXPC_KERNEL" "$dir/vmlinuz" || fail "no kernel $LINUXPC_KERNEL"
	cp "$(command -v busybox)" "$root/bin/busybox"
	linuxpc_copy_bin "$root" "$(command -v iscsistart)"
	mods=$(linuxpc_modules) || fail "module list: $mods"
	for m in $mods; do
		cp "/lib/modules/$LINUXPC_KVER/$m" "$root/lib/modules/" || fail "copy $m"
		echo "/lib/modules/$(basename "$m")" >>"$root/modules"
	done
	cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "LINUXPC-INITRD up"
for m in $(cat /modules); do insmod "$m" 2>/dev/null; done
ip link set lo up
iscsistart -f | sed 's/^/LINUXPC-IBFT /'
iscsistart -N || echo "LINUXPC-ERR iscsistart -N"
iscsistart -b || echo "LINUXPC-ERR iscsistart -b"
luns=1
for a in $(cat /proc/cmdline); do case $a in linuxpc.luns=*) luns=${a#linuxpc.luns=};; esac; done
# disk_of L: the disk (sdX) of LUN L of the iSCSI session, "" until the
# kernel's scan found it (sda is not always LUN 0: disks are probed at once)
disk_of() { ls /sys/class/scsi_disk/*:*:*:$1/device/block 2>/dev/null | head -n 1; }
n=0
while [ $n -lt 100 ]; do
	l=0
	while [ $l -lt $luns ] && [ -n "$(disk_of $l)" ]; do l=$((l + 1)); done
	root=$(disk_of 0)
	[ $l -eq $luns ] && [ -b "/dev/${root}1" ] && break
	sleep 0.2; n=$((n + 1))
done
for d in /sys/class/scsi_disk/*; do
	[ -d "$d/device/block" ] && echo "LINUXPC-LUN ${d##*:} /dev/$(ls $d/device/block)"
done
cat /sys/class/iscsi_session/session*/targetname 2>/dev/null | sed 's/^/LINUXPC-SESSION target /'
cat /sys/class/iscsi_connection/connection*/persistent_address 2>/dev/null | sed 's/^/LINUXPC-SESSION address /'
mount -t ext4 "/dev/${root}1" /newroot || { echo "LINUXPC-ERR no root"; poweroff -f; }
umount /proc /sys
exec switch_root /newroot /sbin/init
EOF
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initrd.img" || fail "cpio of the initrd"
}

linuxpc_disk() {
	local file=$1 mib=$2 root=$tmpdir/linuxpc-root
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc,mnt}
	cp "$(command -v busybox)" "$root/bin/busybox"
	echo 0 >"$root/etc/boot-count"
	cat >"$root/sbin/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
n=$(/bin/busybox cat /etc/boot-count)
echo "LINUXPC-ROOT $n $(/bin/busybox grep ' / ' /proc/mounts | /bin/busybox head -n 1)"
echo $((n + 1)) >/etc/boot-count
data= name=pc
for a in $(/bin/busybox cat /proc/cmdline); do
	case $a in linuxpc.data=*) data=${a#linuxpc.data=};; linuxpc.name=*) name=${a#linuxpc.name=};; esac
done
[ -z "$data" ] || /bin/busybox mount -t devtmpfs devtmpfs /dev
[ -z "$data" ] || /bin/busybox mount -t sysfs sysfs /sys
for l in $(echo "$data" | /bin/busybox tr , ' '); do
	d=$(/bin/busybox ls /sys/class/scsi_disk/*:*:*:$l/device/block 2>/dev/null | /bin/busybox head -n 1)
	[ -n "$d" ] || { echo "LINUXPC-ERR no LUN $l"; continue; }
	/bin/busybox mkdir -p /mnt/$l
	/bin/busybox mount -t ext4 /dev/$d /mnt/$l 2>/dev/null ||
		/bin/busybox mount -t ext4 -o ro,noload /dev/$d /mnt/$l ||
		{ echo "LINUXPC-ERR cannot mount LUN $l"; continue; }
	mode=$(/bin/busybox awk -v m=/mnt/$l '$2 == m { split($4, o, ","); print o[1] }' /proc/mounts)
	last=$(/bin/busybox tail -n 1 /mnt/$l/log 2>/dev/null)
	echo "LINUXPC-DATA $l /dev/$d $mode ro=$(/bin/busybox cat /sys/block/$d/ro) golden=$(/bin/busybox cat /mnt/$l/golden) last=${last:-none}"
	if echo "$name count $n" 2>/dev/null >>/mnt/$l/log && /bin/busybox sync; then
		echo "LINUXPC-DATA-WROTE $l $name count $n"
	else
		echo "LINUXPC-DATA-RO $l"
	fi
done
/bin/busybox sync
echo "LINUXPC-SYNCED $((n + 1))"
while :; do /bin/busybox sleep 1000; done
EOF
	chmod +x "$root/sbin/init"
	rm -f "$tmpdir/linuxpc-part.img"
	mkfs.ext4 -q -F -L pristine-root -d "$root" "$tmpdir/linuxpc-part.img" $((mib - 1))M ||
		fail "mkfs.ext4 of the root"
	python3 - "$file" "$tmpdir/linuxpc-part.img" "$mib" <<'PY'
import struct, sys
out, part, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
start, count = 2048, (mib - 1) * 2048
mbr = bytearray(512)
# one partition, type 0x83, LBA start/count; CHS fields left at their "use LBA" maximum
mbr[446:462] = bytes([0x80, 0xfe, 0xff, 0xff, 0x83, 0xfe, 0xff, 0xff]) + struct.pack("<II", start, count)
mbr[510:512] = b"\x55\xaa"
with open(out, "wb") as f:
    f.write(mbr)
    f.seek(start * 512)
    f.write(open(part, "rb").read())
    f.truncate(mib * 1024 * 1024)
PY
}

linuxpc_data_disk() {
	local file=$1 mib=$2 text=$3 root=$tmpdir/linuxpc-data
	rm -rf "$root"
	mkdir -p "$root"
	echo "$text" >"$root/golden"
	rm -f "$file"
	mkfs.ext4 -q -F -L "$text" -d "$root" "$file" "${mib}M" || fail "mkfs.ext4 of the data disk $file"
}

# linuxpc_await QPID DIR LABEL: at most LINUXPC_WAIT seconds for the
# console DIR/serial.log to show LINUXPC-SYNCED, an error line or a panic
# (or for QEMU QPID to end); prints "LABEL after N s:" and the console's
# LINUXPC- lines.  0 when the root's init synced and nothing failed;
# else 1 after printing the guest's screen (if it still runs), the end of
# its console and QEMU's output.  The guest is left running.
linuxpc_await() {
	local qpid=$1 dir=$2 serial=$2/serial.log start=$SECONDS
	while [ $((SECONDS - start)) -lt "$LINUXPC_WAIT" ]; do
		grep -a -q -E "LINUXPC-(SYNCED|ERR)|Kernel panic" "$serial" && break
		kill -0 "$qpid" 2>/dev/null || break
		sleep 1
	done
	echo "$3 after $((SECONDS - start)) s:"
	grep -a "LINUXPC-" "$serial" | tr -d '\r' | sed 's/^/    | /'
	if ! grep -a -q "^LINUXPC-SYNCED" "$serial" || grep -a -q -E "LINUXPC-ERR|Kernel panic" "$serial"; then
		kill -0 "$qpid" 2>/dev/null && sanboot_screen "$dir/mon.sock"
		tail -n 60 "$serial"
		cat "$dir/qemu.log"
		return 1
	fi
	return 0
}
