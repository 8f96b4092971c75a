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
n=0
while [ ! -b /dev/sda1 ] && [ $n -lt 100 ]; do sleep 0.2; n=$((n + 1)); done
cat /sys/class/iscsi_session/session*/targetname 2>/dev/null | sed 's/^/LINUXPC-SESSION target /'
cat /sys/class/iscsi_connection/connection*/persistent_address 2>/dev/null | sed 's/^/LINUXPC-SESSION address /'
mount -t ext4 /dev/sda1 /newroot || { echo "LINUXPC-ERR no root"; poweroff -f; }
umount /proc /sys
exec switch_root /newroot /sbin/init
EOF
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initrd.img" || fail "cpio of the initrd"
}

linuxpc_disk() {
	local file=$1 mib=$2 root=$tmpdir/linuxpc-root
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc}
	cp "$(command -v busybox)" "$root/bin/busybox"
	echo 0 >"$root/etc/boot-count"
	cat >"$root/sbin/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
n=$(/bin/busybox cat /etc/boot-count)
echo "LINUXPC-ROOT $n $(/bin/busybox grep ' / ' /proc/mounts | /bin/busybox head -n 1)"
echo $((n + 1)) >/etc/boot-count
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
