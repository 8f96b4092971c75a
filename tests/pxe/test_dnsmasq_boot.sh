#!/usr/bin/env bash
# The proof that `pristinectl pxe dnsmasq` writes a real configuration
# (issue 5, item 2): a diskless PC goes from DHCP to sanboot through
# dnsmasq running the GENERATED full-DHCP file, on a network of its own;
# then a second PC does the same through the GENERATED proxy-DHCP file,
# beside a "site" DHCP server that only leases addresses (see "proxy
# DHCP" below; PXE_PROXY_BOOT=0 leaves that part out).
#
#   network namespace pristine-pxe-PID (created here, deleted at exit):
#     br0 10.99.0.1/24 (bridge; no other interface, no route out)
#      `- tap0 <-> QEMU e1000 (pc, SeaBIOS, Debian's iPXE NIC ROM)
#     pristined   iSCSI on 10.99.0.1:3260, boot endpoint 10.99.0.1:8180
#     dnsmasq     -C <output of pristinectl pxe dnsmasq --full
#                     --interface br0 --range 10.99.0.100,10.99.0.150>
#
# QEMU's user-mode network (and its built-in DHCP/TFTP) is not used: the
# guest's only DHCP server is that dnsmasq.  The guest's NIC ROM is iPXE
# already, so what this boot exercises is the configuration's iPXE branch
# (user class "iPXE" / option 175 -> tag ipxe -> the boot URL); the
# firmware-PXE branch (TFTP of undionly.kpxe / ipxe.efi) has no real-PC
# stand-in in QEMU, so the test fetches both binaries by TFTP from the
# same dnsmasq and compares them with Debian's instead.
#
# The image's LBA 0 is tests/boot/bootsector.S (as in test_sanboot.sh): it
# reads LBA 1, writes LBA 2, and reports PRISTINE-BOOT-OK on COM1.  The
# golden image must stay byte-identical.
#
# Needs root (ip netns), ip, dnsmasq, qemu-system-x86_64, ipxe-qemu, curl.
# Skips (77) only when something is missing, or when pristined has no
# --boot-listen.
. "$(dirname "$0")/../lib/common.sh"

BOOT_WAIT=${BOOT_WAIT:-150}	# seconds allowed for DHCP + HTTP + sanboot
ROM=/usr/lib/ipxe/qemu/pxe-e1000.rom
MARKER1=PRISTINE-TEST-LBA1-MARKER-5d3e91	# as in bootsector.S
NS=pristine-pxe-$$
SRV=10.99.0.1
ISCSI_PORT=3260
BOOT_PORT=8180
CTL=${PRISTINECTL:-$BUILD/pristinectl}

[ "$(id -u)" -eq 0 ] || skip "needs root for a network namespace"
for tool in ip dnsmasq qemu-system-x86_64 as ld python3 cmp curl socat; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -r "$ROM" ] || skip "$ROM missing (package ipxe-qemu)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
[ -x "$CTL" ] || skip "$CTL not built (make)"
"$PRISTINED" --help 2>&1 | grep -q -- --boot-listen \
	|| skip "pristined has no --boot-listen yet (the boot endpoint is not in this build)"

. "$(dirname "$0")/../lib/qemu.sh"

DNSPID=""
kill_dnsmasq() {
	[ -n "$DNSPID" ] || return 0
	kill -TERM "$DNSPID" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$DNSPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$DNSPID" 2>/dev/null
	wait "$DNSPID" 2>/dev/null
	DNSPID=""
}
cleanup_ns() {
	kill_qemu
	kill_dnsmasq
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	# Anything of ours still in the namespace, by PID.
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	cleanup_common
}
trap cleanup_ns EXIT
# nsx CMD...: run CMD in the namespace, in the foreground.  Background
# programs are started with `ip netns exec` itself, which execs them, so
# that $! is the program's PID and not a subshell's.
nsx() { ip netns exec "$NS" "$@"; }

# ------------------------------------------------------------ the network
ip netns add "$NS" || skip "cannot create a network namespace (ip netns add failed)"
nsx ip link set lo up
nsx ip link add br0 type bridge || fail "cannot create a bridge in $NS"
nsx ip addr add "$SRV/24" dev br0
nsx ip link set br0 up
nsx ip tuntap add dev tap0 mode tap || fail "cannot create a tap device in $NS"
nsx ip link set tap0 master br0
nsx ip link set tap0 up
echo "namespace $NS:"; nsx ip -brief addr | sed 's/^/    /'
[ -z "$(nsx ip route show default)" ] || fail "the namespace has a route out"

# ------------------------------------------------------------ the image
as --32 -o "$tmpdir/bs.o" "$TOP/tests/boot/bootsector.S" || fail "assembling bootsector.S"
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$tmpdir/bs.bin" "$tmpdir/bs.o" || fail "linking boot sector"
[ "$(stat -c %s "$tmpdir/bs.bin")" -eq 512 ] || fail "boot sector is not 512 bytes"
img=$tmpdir/disk.raw
make_image "$img" 16
python3 - "$img" "$tmpdir/bs.bin" "$MARKER1" <<'PY'
import sys
img, bs, m1 = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3].encode()
with open(img, "r+b") as f:
    f.write(bs)
    f.seek(512); f.write(m1)
PY
cp "$img" "$tmpdir/before.raw"

# ------------------------------------------------------------ pristined
DLOG=$tmpdir/pristined.log
ip netns exec "$NS" "$PRISTINED" --image "$img" --state "$tmpdir/state" -v debug \
	--listen "$SRV:$ISCSI_PORT" --boot-listen "$SRV:$BOOT_PORT" >"$DLOG" 2>&1 &
DPID=$!
for _ in $(seq 1 100); do
	grep -q 'listening' "$DLOG" 2>/dev/null && break
	kill -0 "$DPID" 2>/dev/null || { cat "$DLOG"; fail "pristined exited at start"; }
	sleep 0.1
done
grep -q 'listening' "$DLOG" || { cat "$DLOG"; fail "pristined did not start listening"; }
for _ in $(seq 1 50); do [ -S "$tmpdir/state/pristined.sock" ] && break; sleep 0.1; done
echo "pristined: iSCSI $SRV:$ISCSI_PORT, boot http://$SRV:$BOOT_PORT/boot.ipxe"

# ------------------------------------------------------------ the generated file
# Run inside the namespace so that --interface br0 finds the address.
conf=$tmpdir/pristine-dnsmasq.conf
nsx timeout 30 "$CTL" --state "$tmpdir/state" pxe dnsmasq --full --interface br0 \
	--range 10.99.0.100,10.99.0.150 >"$conf" 2>"$tmpdir/ctl.err" \
	|| { cat "$tmpdir/ctl.err"; fail "pristinectl pxe dnsmasq --full failed"; }
echo "generated configuration:"; sed 's/^/    | /' "$conf"
[ ! -s "$tmpdir/ctl.err" ] || { cat "$tmpdir/ctl.err"; fail "pristinectl warned about this setup"; }
grep -qx "dhcp-boot=tag:ipxe,http://$SRV:$BOOT_PORT/boot.ipxe" "$conf" \
	|| fail "the file does not send iPXE to http://$SRV:$BOOT_PORT/boot.ipxe"
dnsmasq --test -C "$conf" >/dev/null 2>&1 || fail "dnsmasq --test rejects the generated file"

# ------------------------------------------------------------ dnsmasq
# Only run-time settings on the command line; everything about DHCP and
# TFTP is the generated file's.  Root, so that it needs no user of its own
# (the files it serves are world-readable anyway).
DNSLOG=$tmpdir/dnsmasq.log
ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file="$conf" --user=root --group=root \
	--pid-file="$tmpdir/dnsmasq.pid" --dhcp-leasefile="$tmpdir/leases" \
	--log-dhcp --log-facility="$DNSLOG" >"$tmpdir/dnsmasq.out" 2>&1 &
DNSPID=$!
for _ in $(seq 1 50); do
	grep -q 'TFTP root is' "$DNSLOG" 2>/dev/null && break
	kill -0 "$DNSPID" 2>/dev/null || { cat "$tmpdir/dnsmasq.out" "$DNSLOG"; fail "dnsmasq exited at start"; }
	sleep 0.1
done
echo "dnsmasq started:"; sed 's/^/    | /' "$DNSLOG"

# The firmware-PXE branch's files: what the file serves by TFTP is Debian's iPXE.
for b in undionly.kpxe ipxe.efi; do
	if [ ! -r "/usr/lib/ipxe/$b" ]; then
		echo "TFTP of $b not checked: /usr/lib/ipxe/$b missing (package ipxe)"
		continue
	fi
	nsx timeout 30 curl -s -o "$tmpdir/$b" "tftp://$SRV/$b" || fail "TFTP of $b from dnsmasq failed"
	cmp "$tmpdir/$b" "/usr/lib/ipxe/$b" || fail "TFTP served a different $b"
	echo "TFTP: $b served, identical to /usr/lib/ipxe/$b"
done

# ------------------------------------------------------------ the PC
# screen: print the guest's 80x25 VGA text screen (iPXE's messages).
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

# boot_pc NAME MAC LOG...: boot one PC with that MAC; fails unless the boot
# sector reports PRISTINE-BOOT-OK.  The LOG files (dnsmasq's) are printed.
boot_pc() {
	local name=$1 mac=$2 serial=$tmpdir/serial-$1.log start; shift 2
	: >"$serial"
	ip netns exec "$NS" timeout -k 5 $((BOOT_WAIT + 60)) qemu-system-x86_64 -M pc -m 128 -nodefaults \
		-display none -vga std -no-reboot -boot n \
		-monitor "unix:$tmpdir/mon.sock,server=on,wait=off" \
		-serial "file:$serial" \
		-netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
		-device "e1000,netdev=n0,romfile=$ROM,mac=$mac" \
		>"$tmpdir/qemu.log" 2>&1 &
	QPID=$!
	start=$SECONDS
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
		cat "$tmpdir/qemu.log"
	fi
	kill_qemu
	for l in "$@"; do echo "[$name] $(basename "$l"):"; sed 's/^/    | /' "$l"; done
	echo "[$name] pristined log (boot endpoint and sessions):"
	grep -E 'boot|logged in|enrolled' "$DLOG" | sed 's/^/    | /'
	kill -0 "$DPID" 2>/dev/null || { tail -n 40 "$DLOG"; fail "pristined died"; }
	[ -n "$RESULT" ] || fail "[$name] no PRISTINE-BOOT result on the serial port within $BOOT_WAIT s"
	[ "$RESULT" = PRISTINE-BOOT-OK ] || fail "[$name] boot sector reported '$RESULT', expected PRISTINE-BOOT-OK"
	grep -a -q 'PRISTINE-BOOT-START drive=80' "$serial" || fail "[$name] boot sector did not run from drive 0x80"
	grep -q "boot: .*(MAC $mac) from 10\.99\.0\.1[0-9][0-9]: sanboot" "$DLOG" \
		|| fail "[$name] pristined logged no sanboot answer to $mac at an address from the range"
}

boot_pc full 52:54:00:99:00:42 "$DNSLOG"
# The chain went the way the file says: a lease from dnsmasq, the ipxe tag,
# the boot URL as the file name, never a binary to iPXE.
grep -q 'DHCPACK(br0) 10\.99\.0\.1[0-9][0-9] 52:54:00:99:00:42' "$DNSLOG" \
	|| fail "[full] dnsmasq gave the PC no lease from the range"
grep -q 'tags: .*ipxe' "$DNSLOG" || fail "[full] dnsmasq did not tag the PC's request ipxe"
grep -q -E "option: 67 bootfile-name +http://$SRV:$BOOT_PORT/boot.ipxe\$" "$DNSLOG" \
	|| fail "[full] dnsmasq did not hand the PC the boot URL"
grep 'bootfile-name' "$DNSLOG" | grep -q -E 'undionly\.kpxe|ipxe\.efi' \
	&& fail "[full] dnsmasq handed the iPXE client an iPXE binary (boot loop)"
cmp "$img" "$tmpdir/before.raw" || fail "[full] the golden image changed: a client wrote it"
echo "[full] OK: DHCP from the generated full-DHCP file -> http://$SRV:$BOOT_PORT/boot.ipxe -> sanboot; image unchanged"
kill_dnsmasq

# ------------------------------------------------------------ proxy DHCP
# Why the proxy file names this server twice in its iPXE line
# (dhcp-boot=tag:ipxe,URL,,SERVER): iPXE (src/net/udp/dhcp.c,
# dhcp_has_pxeopts) takes a "PXEClient" proxy answer's settings only if it
# has a non-zero siaddr (next-server) AND a file name, or a PXE boot menu
# (option 43.9).  dnsmasq's proxy answers carry siaddr only from the
# dhcp-boot server address (rfc2131.c, the proxy branch), so with a bare
# dhcp-boot=tag:ipxe,URL the OFFER and the port-4011 ACK had the URL in
# the file field but siaddr 0.0.0.0 (seen with tcpdump on tap0): iPXE kept
# re-sending its ProxyDHCPREQUEST, dropped every ACK, gave up and ended
# with "Nothing to boot".  With the address the proxy OFFER is taken at
# once (no port-4011 request at all) and the PC boots.
if [ "${PXE_PROXY_BOOT:-1}" = 0 ]; then
	echo "[proxy] QEMU boot through the proxy-DHCP file not run (PXE_PROXY_BOOT=0)"
else
# The site's own DHCP server lives in a second namespace on the same
# bridge (veth): it leases addresses and knows nothing of booting.  Our
# dnsmasq runs the generated proxy file beside it and adds only the boot
# information; the PC must take its address from one and its boot URL
# from the other.
SITE=pristine-site-$$
ip netns add "$SITE" || fail "cannot create the site namespace"
cleanup_site() {
	for p in $(ip netns pids "$SITE" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$SITE" 2>/dev/null
	cleanup_ns
}
trap cleanup_site EXIT
ip link add site0 netns "$SITE" type veth peer name lab0 netns "$NS" || fail "cannot create a veth pair"
nsx ip link set lab0 master br0
nsx ip link set lab0 up
ip netns exec "$SITE" ip addr add 10.99.0.2/24 dev site0
ip netns exec "$SITE" ip link set site0 up
ip netns exec "$SITE" ip link set lo up
SITELOG=$tmpdir/site-dhcp.log
ip netns exec "$SITE" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
	--interface=site0 --dhcp-range=10.99.0.160,10.99.0.190,12h --user=root --group=root \
	--pid-file="$tmpdir/site.pid" --dhcp-leasefile="$tmpdir/site.leases" \
	--log-dhcp --log-facility="$SITELOG" >"$tmpdir/site.out" 2>&1 &
SITEPID=$!
proxyconf=$tmpdir/pristine-dnsmasq-proxy.conf
nsx timeout 30 "$CTL" --state "$tmpdir/state" pxe dnsmasq --interface br0 >"$proxyconf" 2>"$tmpdir/ctl.err" \
	|| { cat "$tmpdir/ctl.err"; fail "pristinectl pxe dnsmasq (proxy) failed"; }
echo "generated proxy configuration (without comments):"; grep -v '^#' "$proxyconf" | grep . | sed 's/^/    | /'
grep -qx 'dhcp-range=10.99.0.0,proxy' "$proxyconf" || fail "[proxy] dhcp-range is not the bridge's network"
grep -qx "dhcp-boot=tag:ipxe,http://$SRV:$BOOT_PORT/boot.ipxe,,$SRV" "$proxyconf" \
	|| fail "[proxy] the file does not send iPXE to http://$SRV:$BOOT_PORT/boot.ipxe with next-server $SRV"
dnsmasq --test -C "$proxyconf" >/dev/null 2>&1 || fail "[proxy] dnsmasq --test rejects the generated file"
PROXYLOG=$tmpdir/proxy-dhcp.log
ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file="$proxyconf" --user=root --group=root \
	--pid-file="$tmpdir/dnsmasq-proxy.pid" --dhcp-leasefile="$tmpdir/proxy.leases" \
	--log-dhcp --log-facility="$PROXYLOG" >"$tmpdir/dnsmasq.out" 2>&1 &
DNSPID=$!
for _ in $(seq 1 50); do
	grep -q 'TFTP root is' "$PROXYLOG" 2>/dev/null && grep -q 'DHCP, IP range' "$SITELOG" 2>/dev/null && break
	sleep 0.1
done
kill -0 "$DNSPID" 2>/dev/null || { cat "$tmpdir/dnsmasq.out" "$PROXYLOG"; fail "[proxy] dnsmasq exited at start"; }
kill -0 "$SITEPID" 2>/dev/null || { cat "$tmpdir/site.out" "$SITELOG"; fail "the site's dnsmasq exited at start"; }
boot_pc proxy 52:54:00:99:00:43 "$SITELOG" "$PROXYLOG"
grep -q 'DHCPACK(site0) 10\.99\.0\.1[6-9][0-9] 52:54:00:99:00:43' "$SITELOG" \
	|| fail "[proxy] the PC's address did not come from the site's DHCP server"
grep -q 'PXE(br0) 52:54:00:99:00:43 proxy' "$PROXYLOG" || fail "[proxy] our dnsmasq sent no proxy answer"
grep -q -E "bootfile name: http://$SRV:$BOOT_PORT/boot\.ipxe\$" "$PROXYLOG" \
	|| fail "[proxy] our dnsmasq did not put the boot URL in its proxy answer"
grep -q -E "next server: $SRV\$" "$PROXYLOG" \
	|| fail "[proxy] our dnsmasq's proxy answer has no next-server (iPXE ignores it then)"
grep 'bootfile name' "$PROXYLOG" | grep -q -E 'undionly\.kpxe|ipxe\.efi' \
	&& fail "[proxy] our dnsmasq handed the iPXE client an iPXE binary (boot loop)"
grep -q 'DHCPACK(br0)' "$PROXYLOG" && fail "[proxy] our dnsmasq leased an address"
cmp "$img" "$tmpdir/before.raw" || fail "[proxy] the golden image changed: a client wrote it"
echo "[proxy] OK: address from the site's DHCP, boot URL from the generated proxy file -> sanboot"
kill_dnsmasq

fi

# Stop the daemon cleanly: no sanitizer reports, status 0.
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=""
if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DLOG"; then
	cat "$DLOG"; fail "sanitizer report in pristined log"
fi
[ "$rc" -eq 0 ] || { tail -n 40 "$DLOG"; fail "pristined exited with status $rc"; }
echo PASS
