#!/usr/bin/env bash
# pristinectl pxe dnsmasq against a live daemon with its boot endpoint on
# (quick mode, --boot-listen on loopback): the proxy-DHCP and full-DHCP
# configurations pass `dnsmasq --test`, name the boot URL with the daemon's
# boot port, serve Debian's iPXE binaries (undionly.kpxe for BIOS, ipxe.efi
# for UEFI) from /usr/lib/ipxe by TFTP, tag requests from iPXE (user class
# "iPXE", option 175) and hand only those the URL, never the binary;
# port=0.  Then the refusals: boot endpoint off, --full without --range,
# --proxy with --full, bad addresses, an unknown pxe verb.
# What dnsmasq does with these files on a wire is test_dnsmasq_boot.sh's.
. "$(dirname "$0")/../lib/common.sh"
CTL=${PRISTINECTL:-$BUILD/pristinectl}
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
[ -x "$CTL" ] || skip "$CTL not built (make)"
command -v dnsmasq >/dev/null || skip "dnsmasq not installed (make deps: dnsmasq-base)"
"$PRISTINED" --help 2>&1 | grep -q -- --boot-listen \
	|| skip "pristined has no --boot-listen yet (the boot endpoint is not in this build)"

img=$tmpdir/disk.raw
truncate -s 8M "$img"
BPORT=$(free_port)
start_daemon --image "$img" --state "$tmpdir/state" --boot-listen "127.0.0.1:$BPORT"
ctl() { timeout 30 "$CTL" --state "$tmpdir/state" "$@"; }
SERVER=192.0.2.10		# TEST-NET-1: any address will do for the file
URL="http://$SERVER:$BPORT/boot.ipxe"

# check_common FILE: what both modes share.
check_common() {
	local f=$1
	dnsmasq --test -C "$f" >"$tmpdir/test.out" 2>&1 \
		|| { cat "$tmpdir/test.out"; cat -n "$f"; fail "dnsmasq --test rejects $f"; }
	grep -q 'syntax check OK' "$tmpdir/test.out" || fail "dnsmasq --test did not say OK for $f"
	grep -qx 'port=0' "$f" || fail "$f: no port=0 (DNS must be off)"
	grep -qx 'enable-tftp' "$f" || fail "$f: TFTP not enabled"
	grep -qx 'tftp-root=/usr/lib/ipxe' "$f" || fail "$f: tftp-root is not Debian's /usr/lib/ipxe"
	grep -qx 'dhcp-userclass=set:ipxe,iPXE' "$f" || fail "$f: iPXE's user class does not set the tag"
	grep -qx 'dhcp-match=set:ipxe,175' "$f" || fail "$f: option 175 does not set the tag"
	grep -q "^dhcp-boot=tag:ipxe,$URL" "$f" || fail "$f: iPXE is not handed $URL"
	# The URL goes to tagged requests only; the binaries never to them.
	[ "$(grep -c "$URL" "$f" | tr -d ' ')" -ge 1 ] || fail "$f: no boot URL"
	grep -v '^#' "$f" | grep "$URL" | grep -qv 'tag:ipxe,' && fail "$f: the URL is offered to non-iPXE requests"
	grep -v '^#' "$f" | grep -E 'undionly\.kpxe|ipxe\.efi' | grep -v 'tag:!ipxe' \
		| grep -v '^tftp' && fail "$f: an iPXE binary is offered without tag:!ipxe (boot loop)"
	for b in undionly.kpxe ipxe.efi; do
		[ -r "/usr/lib/ipxe/$b" ] || echo "note: /usr/lib/ipxe/$b absent (package ipxe not installed)"
	done
	return 0
}

# ---------------------------------------------------------------- proxy
ctl pxe dnsmasq --server "$SERVER" >"$tmpdir/proxy.conf" 2>"$tmpdir/proxy.err" \
	|| { cat "$tmpdir/proxy.err"; fail "pxe dnsmasq (proxy) failed"; }
echo "--- proxy configuration:"; sed 's/^/    | /' "$tmpdir/proxy.conf"
ctl pxe dnsmasq --proxy --server "$SERVER" | cmp -s - "$tmpdir/proxy.conf" \
	|| fail "--proxy is not the default"
check_common "$tmpdir/proxy.conf"
grep -qx "dhcp-range=$SERVER,proxy" "$tmpdir/proxy.conf" || fail "proxy: no dhcp-range=...,proxy"
# iPXE drops a proxy answer whose siaddr is 0 (dhcp_has_pxeopts); dnsmasq
# sets it in proxy answers only from the dhcp-boot server address.
grep -qx "dhcp-boot=tag:ipxe,$URL,,$SERVER" "$tmpdir/proxy.conf" \
	|| fail "proxy: iPXE's dhcp-boot line does not name $SERVER as next-server"
grep -q '^dhcp-range=.*,[0-9.]*,[0-9.]*,.*h$' "$tmpdir/proxy.conf" && fail "proxy: leases addresses"
grep -qx 'pxe-service=tag:!ipxe,x86PC,"pristine network boot",undionly.kpxe' "$tmpdir/proxy.conf" \
	|| fail "proxy: no BIOS pxe-service loading undionly.kpxe"
grep -qx 'pxe-service=tag:!ipxe,x86-64_EFI,"pristine network boot",ipxe.efi' "$tmpdir/proxy.conf" \
	|| fail "proxy: no UEFI (7) pxe-service loading ipxe.efi"
grep -qx 'pxe-service=tag:!ipxe,BC_EFI,"pristine network boot",ipxe.efi' "$tmpdir/proxy.conf" \
	|| fail "proxy: no UEFI (9) pxe-service loading ipxe.efi"
grep -q 'warning: the boot endpoint listens on 127.0.0.1' "$tmpdir/proxy.err" \
	|| fail "no warning that the boot endpoint listens on loopback only"
echo "[proxy] OK"

# ---------------------------------------------------------------- full
ctl pxe dnsmasq --full --server "$SERVER" --range 192.0.2.100,192.0.2.199,255.255.255.0 \
	--interface lo >"$tmpdir/full.conf" 2>"$tmpdir/full.err" \
	|| { cat "$tmpdir/full.err"; fail "pxe dnsmasq --full failed"; }
echo "--- full configuration:"; sed 's/^/    | /' "$tmpdir/full.conf"
check_common "$tmpdir/full.conf"
grep -qx 'dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,12h' "$tmpdir/full.conf" \
	|| fail "full: dhcp-range is not the --range"
grep -qx 'interface=lo' "$tmpdir/full.conf" || fail "full: --interface not honoured"
grep -qx "dhcp-boot=tag:ipxe,$URL" "$tmpdir/full.conf" || fail "full: iPXE's dhcp-boot line changed"
grep -qx 'dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe' "$tmpdir/full.conf" || fail "full: BIOS branch"
grep -qx 'dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi' "$tmpdir/full.conf" || fail "full: UEFI branch"
grep -qx 'dhcp-match=set:efi64,option:client-arch,7' "$tmpdir/full.conf" || fail "full: arch 7"
grep -qx 'dhcp-match=set:efi64,option:client-arch,9' "$tmpdir/full.conf" || fail "full: arch 9"
grep -q '^pxe-service' "$tmpdir/full.conf" && fail "full: pxe-service entries (dhcp-boot is the full-DHCP way)"
echo "[full] OK"

# --interface alone gives the server address (lo is 127.0.0.1 here).
ctl pxe dnsmasq --interface lo >"$tmpdir/lo.conf" 2>/dev/null || fail "--interface lo failed"
grep -qx "dhcp-boot=tag:ipxe,http://127.0.0.1:$BPORT/boot.ipxe,,127.0.0.1" "$tmpdir/lo.conf" \
	|| fail "--interface lo did not take lo's address"
dnsmasq --test -C "$tmpdir/lo.conf" >/dev/null 2>&1 || fail "dnsmasq --test rejects the --interface lo file"

# ---------------------------------------------------------------- refusals
# expect RC PATTERN ARGS...: pristinectl exits RC and says PATTERN on stderr.
expect() {
	local want=$1 pat=$2 rc=0; shift 2
	ctl "$@" >"$tmpdir/out" 2>"$tmpdir/err" || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$tmpdir/err"; fail "pristinectl $* exited $rc, expected $want"; }
	grep -q -- "$pat" "$tmpdir/err" || { cat "$tmpdir/err"; fail "pristinectl $*: no '$pat' on stderr"; }
	[ ! -s "$tmpdir/out" ] || fail "pristinectl $* printed a configuration although it failed"
	echo "refused as expected: pristinectl $*: $(head -n 1 "$tmpdir/err")"
}
expect 2 'cannot tell which address' pxe dnsmasq
expect 2 'needs --range' pxe dnsmasq --full --server "$SERVER"
expect 2 'not both' pxe dnsmasq --proxy --full --server "$SERVER" --range 192.0.2.1,192.0.2.9
expect 2 'is for --full' pxe dnsmasq --server "$SERVER" --range 192.0.2.1,192.0.2.9
expect 2 'FIRST comes after LAST' pxe dnsmasq --full --server "$SERVER" --range 192.0.2.9,192.0.2.1
expect 2 'not a netmask' pxe dnsmasq --full --server "$SERVER" --range 192.0.2.1,192.0.2.9,255.0.255.0
expect 2 'IPv4' pxe dnsmasq --full --server "$SERVER" --range 192.0.2.1,nonsense
expect 2 'wants this server' pxe dnsmasq --server 'evil
dhcp-boot=x'
expect 2 'not an interface name' pxe dnsmasq --interface 'eth0
port=53'
expect 2 'no IPv4 address' pxe dnsmasq --interface nosuchif0
expect 2 'does not go with' pxe dnsmasq --server "$SERVER" --force
expect 2 'unknown pxe verb' pxe pxelinux
expect 2 'pxe needs a verb' pxe
expect 2 'does not go with' client list --proxy
stop_daemon

# The boot endpoint off: a clear error, no file.
start_daemon --image "$img" --state "$tmpdir/state2"
timeout 30 "$CTL" --state "$tmpdir/state2" pxe dnsmasq --server "$SERVER" >"$tmpdir/out" 2>"$tmpdir/err"
rc=$?
[ "$rc" -eq 1 ] || { cat "$tmpdir/err"; fail "boot endpoint off: exit $rc, expected 1"; }
grep -q "boot endpoint is off" "$tmpdir/err" && grep -q "boot-listen" "$tmpdir/err" \
	|| { cat "$tmpdir/err"; fail "boot endpoint off: the message does not say so and how"; }
[ ! -s "$tmpdir/out" ] || fail "boot endpoint off: a configuration was printed"
echo "refused as expected with the boot endpoint off:"; sed 's/^/    /' "$tmpdir/err"
stop_daemon
# No daemon at all: exit 3.
rc=0; timeout 30 "$CTL" --state "$tmpdir/state2" pxe dnsmasq --server "$SERVER" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "no daemon: exit $rc, expected 3"
echo PASS
