#!/usr/bin/env bash
# Issue 5, "what it must show" 1: a lab of three diskless PCs boots AT ONCE
# through the boot endpoint, from one image, with no hand-written script.
#
#   3 x QEMU (pc, TCG) + SeaBIOS + Debian's iPXE ROM, each with its own MAC
#   (52:54:00:00:00:0N), on QEMU's user network with restrict=on: DHCP
#   hands out bootfile=http://10.0.2.100/boot.ipxe, and the guest reaches
#   nothing but two forwarded ports (guestfwd -> socat -> 127.0.0.1):
#     10.0.2.100:80   -> the boot endpoint (pristined --boot-listen)
#     10.0.2.100:3260 -> the iSCSI portal  (--boot-portal 10.0.2.100:3260)
#   iPXE chains boot.ipxe, is re-chained with ?mac=..&uuid=..&ip=.., and the
#   answer sets its initiator name and sanboots the image.
#
#   pc1  registered through the API, policy persistent
#   pc2  registered through the API, policy reset-on-boot
#   pc3  unknown: enrolled automatically (enroll auto) as
#        iqn.2026-11.org.pristine:pc-525400000003 with its MAC
#
# The image's LBA 0 is tests/boot/bootsector.S: it reads LBA 1, writes
# LBA 2 (the same marker for every PC), and prints the first 15 bytes of
# LBA 3 on COM1 ("PRISTINE-BOOT-OK LBA3=...").  What the test shows:
#   - the three boots run at the same time (all three VMs alive and their
#     iSCSI sessions online together); every PC gets its own initiator;
#   - each PC's overlay holds its own marker: after the first boot a marker
#     per PC ("CLIENT-MARK-pcN") is written to LBA 3 as that PC's initiator
#     (qemu-io); the whole disk of each PC (qemu-img, as its initiator) is
#     exactly golden + its LBA 2 write + its OWN marker, never another's;
#   - reboot (system_reset through the QEMU monitor; the old iPXE session
#     stays open, as after a real reset): the persistent pc1 and the
#     enrolled pc3 print their own marker from LBA 3; the reset-on-boot pc2
#     prints the golden "LBA000000000003", the daemon logs its stale session
#     ended and "reset (reset-on-boot)", and its whole disk reads as golden
#     + the LBA 2 its second boot wrote;
#   - pc4, added through the API with mutual CHAP and bound to its address
#     (127.0.0.1, where QEMU's socat connects from), boots with the
#     credentials of its script; no secret reaches the log;
#   - the golden image file's sha256 never changes.
. "$(dirname "$0")/../lib/common.sh"
for tool in qemu-img qemu-io jq curl sha256sum cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
"$PRISTINED" --help 2>&1 | grep -q -- --boot-listen || skip "pristined has no --boot-listen"
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
. "$TOP/tests/lib/images.sh"
sanboot_check_tools
[ -x "$CTL" ] || skip "$CTL not built (make)"

LAB_WAIT=${LAB_WAIT:-150}	# seconds for all three PCs to report a boot
STATE=$tmpdir/state
G=$tmpdir/golden.raw
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
PC1=$P:lab-pc1 PC2=$P:lab-pc2 PC3=iqn.2026-11.org.pristine:pc-525400000003 PC4=$P:lab-pc4
MIB=16
declare -A VMPID=()

kill_vms() {
	local n pid
	for n in "${!VMPID[@]}"; do
		pid=${VMPID[$n]}
		kill -TERM "$pid" 2>/dev/null
	done
	for n in "${!VMPID[@]}"; do
		pid=${VMPID[$n]}
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	VMPID=()
}
trap 'kill_vms; cleanup_common' EXIT

api() {	# METHOD PATH [JSON]: the admin API over its Unix socket
	curl -s --max-time 20 --unix-socket "$STATE/pristined.sock" -X "$1" \
		${3:+-H 'Content-Type: application/json' --data "$3"} "http://x$2"
}
cjson() { ctl --json client show "$1" | jq -r "$2"; }

# vm N: start PC N (MAC 52:54:00:00:00:0N), booting from the network only.
# No -no-reboot (system_reset must reboot it) and no isa-debug-exit: the
# PC halts after its boot sector and stays up, its iPXE session open.
# Each PC gets its own SMBIOS UUID (shown by the API as boot_uuid).  Without
# -uuid every QEMU reports 00000000-0000-0000-0000-000000000000; the daemon
# never matches such placeholder UUIDs (test_boot_endpoint.py checks it).
vm() {
	local n=$1 dir=$tmpdir/vm$1
	mkdir -p "$dir"
	: >"$dir/serial.log"
	timeout -k 5 600 qemu-system-x86_64 -M pc -m 128 -nodefaults \
		-display none -vga std -boot n -uuid "5a5a5a5a-0000-4000-8000-00000000000$n" \
		-monitor "unix:$dir/mon.sock,server=on,wait=off" \
		-serial "file:$dir/serial.log" \
		-netdev "user,id=n0,restrict=on,bootfile=http://10.0.2.100/boot.ipxe,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:$BOOTPORT,guestfwd=tcp:10.0.2.100:3260-cmd:socat - TCP:127.0.0.1:$PORT" \
		-device "e1000,netdev=n0,mac=52:54:00:00:00:0$n,romfile=$SANBOOT_ROM" \
		>"$dir/qemu.log" 2>&1 &
	VMPID[$n]=$!
}

monitor() {	# N COMMAND
	echo "$2" | timeout 5 socat - "UNIX-CONNECT:$tmpdir/vm$1/mon.sock" >/dev/null 2>&1 \
		|| fail "pc$1: QEMU monitor command '$2' failed"
}

# wait_boots COUNT N...: wait until each PC N reported COUNT boots
# (PRISTINE-BOOT-OK or -ERR lines); LAST[N] = its last result line.
declare -A LAST=()
wait_boots() {
	local count=$1 n done start=$SECONDS
	shift
	while :; do
		done=1
		for n in "$@"; do
			kill -0 "${VMPID[$n]}" 2>/dev/null || { cat "$tmpdir/vm$n/qemu.log"; fail "pc$n: QEMU exited"; }
			[ "$(grep -a -c 'PRISTINE-BOOT-\(OK\|ERR\)' "$tmpdir/vm$n/serial.log")" -ge "$count" ] || done=0
		done
		[ "$done" = 1 ] && break
		if [ $((SECONDS - start)) -ge "$LAB_WAIT" ]; then
			for n in "$@"; do
				echo "--- pc$n serial:"; sed 's/^/    | /' "$tmpdir/vm$n/serial.log"
				echo "--- pc$n screen:"; sanboot_screen "$tmpdir/vm$n/mon.sock"
			done
			tail -n 40 "$DLOG"
			fail "not every PC of $* reported boot $count within $LAB_WAIT s"
		fi
		sleep 0.5
	done
	for n in "$@"; do
		LAST[$n]=$(grep -a -o 'PRISTINE-BOOT-\(OK LBA3=.\{15\}\|ERR [A-Z0-9?] [0-9a-f]*\)' \
			"$tmpdir/vm$n/serial.log" | tail -n 1)
		echo "    pc$n boot $count after $((SECONDS - start)) s: ${LAST[$n]}"
	done
}

# ------------------------------------------------------------------ set-up
sanboot_build
make_image "$G" "$MIB"
sanboot_image "$G"
sanboot_lba2 "$tmpdir/lba2.bin"
SHA=$(sha256sum <"$G")
GOLD3=$(dd if="$G" bs=1 skip=1536 count=15 status=none)
[ "$GOLD3" = LBA000000000003 ] || fail "the test image's LBA 3 does not start with LBA000000000003"
# What a PC sees after booting once: golden + the boot sector's LBA 2.
cp "$G" "$tmpdir/booted.raw"
dd if="$tmpdir/lba2.bin" of="$tmpdir/booted.raw" bs=512 seek=2 conv=notrunc status=none
for n in 1 2 3; do	# ... plus its own marker in LBA 3
	printf 'CLIENT-MARK-pc%s' "$n" >"$tmpdir/mark$n.bin"
	head -c 497 /dev/zero | tr '\0' "$n" >>"$tmpdir/mark$n.bin"
	cp "$tmpdir/booted.raw" "$tmpdir/marked$n.raw"
	dd if="$tmpdir/mark$n.bin" of="$tmpdir/marked$n.raw" bs=512 seek=3 conv=notrunc status=none
done

BOOTPORT=$(free_port)
start_daemon --image "$G" --target "$GTARGET" --state "$STATE" \
	--boot-listen "127.0.0.1:$BOOTPORT" --boot-portal 10.0.2.100:3260
wait_boot_endpoint "http://127.0.0.1:$BOOTPORT/boot.ipxe"
echo "pristined: iSCSI 127.0.0.1:$PORT, boot endpoint 127.0.0.1:$BOOTPORT, target $GTARGET"

echo "== register pc1 (persistent) and pc2 (reset-on-boot) through the API; pc3 stays unknown"
out=$(api POST /v1/clients "{\"initiator\":\"$PC1\",\"name\":\"lab-pc1\",\"mac\":\"52:54:00:00:00:01\",\"policy\":\"persistent\"}")
echo "    $out"
[ "$(echo "$out" | jq -r '.mac + " " + .policy')" = "52:54:00:00:00:01 persistent" ] || fail "adding pc1: $out"
out=$(api POST /v1/clients "{\"initiator\":\"$PC2\",\"name\":\"lab-pc2\",\"mac\":\"52-54-00-00-00-02\",\"policy\":\"reset-on-boot\"}")
echo "    $out"
[ "$(echo "$out" | jq -r '.mac + " " + .policy')" = "52:54:00:00:00:02 reset-on-boot" ] || fail "adding pc2: $out"
[ "$(ctl --json client list | jq '.clients | length')" = 2 ] || fail "not exactly two clients before the boots"

echo "== three PCs boot at once (starts 2 s apart)"
T0=$SECONDS
vm 1; sleep 2; vm 2; sleep 2; vm 3
wait_boots 1 1 2 3
for n in 1 2 3; do
	[ "${LAST[$n]}" = "PRISTINE-BOOT-OK LBA3=$GOLD3" ] || fail "pc$n first boot: '${LAST[$n]}'"
	grep -a -q 'PRISTINE-BOOT-START drive=80' "$tmpdir/vm$n/serial.log" || fail "pc$n: no boot from drive 0x80"
done
echo "    all three booted in $((SECONDS - T0)) s"
# All three up, their iPXE sessions open together.
for n in 1 2 3; do kill -0 "${VMPID[$n]}" 2>/dev/null || fail "pc$n is not running"; done
sess=$(ctl --json session list | jq -r '[.sessions[] | select(.type == "normal") | .initiator] | unique | sort | join(" ")')
echo "    sessions online now: $sess"
[ "$sess" = "$(printf '%s\n' "$PC1" "$PC2" "$PC3" | sort | tr '\n' ' ' | sed 's/ $//')" ] \
	|| { ctl --json client list; cat "$DLOG"; fail "the three PCs are not online at the same time: $sess"; }
for ini in "$PC1" "$PC2" "$PC3"; do
	grep -q "boot: $ini (MAC 52:54:00:00:00:0[123]) from 127.0.0.1: sanboot $GTARGET via 10.0.2.100:3260" "$DLOG" \
		|| { cat "$DLOG"; fail "no boot-endpoint answer for $ini in the log"; }
done
echo "== pc3 was enrolled automatically, with its MAC"
ctl --json client list | jq -c '.clients[] | {name, initiator, mac, policy, origin, online, last_boot}'
[ "$(cjson "$PC3" '.name + " " + .mac + " " + .origin + " " + .policy')" = \
	"pc-525400000003 52:54:00:00:00:03 auto persistent" ] || fail "pc3 not enrolled as pc-525400000003 with its MAC"
for ini in "$PC1" "$PC2" "$PC3"; do
	[ "$(cjson "$ini" '.last_boot')" -gt 0 ] || fail "$ini has no last_boot"
	[ "$(cjson "$ini" '.online')" = true ] || fail "$ini is not online"
done
[ "$(ctl --json client list | jq '.clients | length')" = 3 ] || fail "not exactly three clients"
for n in 1 2 3; do
	ini=PC$n
	[ "$(cjson "${!ini}" '.boot_uuid')" = "5a5a5a5a-0000-4000-8000-00000000000$n" ] || fail "pc$n: the UUID it reported is not shown"
done
grep -c "client $PC2 reset (reset-on-boot)" "$DLOG" | grep -qx 1 || fail "pc2's first boot did not reset it once"

echo "== each PC's overlay: a marker of its own in LBA 3, seen by it alone"
for n in 1 2 3; do
	ini=PC$n
	qio "${!ini}" -c "write -s $tmpdir/mark$n.bin 1536 512"
done
for n in 1 2 3; do
	ini=PC$n
	same "${!ini}" "$tmpdir/marked$n.raw"
done
same $P:outsider "$G"
[ "$(sha256sum <"$G")" = "$SHA" ] || fail "the golden image changed"

echo "== reboot all three (system_reset; the old iPXE sessions stay open, stale)"
for n in 1 2 3; do monitor "$n" system_reset; sleep 1; done
wait_boots 2 1 2 3
[ "${LAST[1]}" = "PRISTINE-BOOT-OK LBA3=CLIENT-MARK-pc1" ] || fail "persistent pc1 lost its marker: '${LAST[1]}'"
[ "${LAST[3]}" = "PRISTINE-BOOT-OK LBA3=CLIENT-MARK-pc3" ] || fail "enrolled pc3 lost its marker: '${LAST[3]}'"
[ "${LAST[2]}" = "PRISTINE-BOOT-OK LBA3=$GOLD3" ] \
	|| fail "reset-on-boot pc2 did not find a pristine LBA 3 after its reboot: '${LAST[2]}'"
grep -E "boot: $PC2 reboots with [0-9]+ stale sessions? from 127.0.0.1: ending them" "$DLOG" \
	|| { cat "$DLOG"; fail "pc2's stale session was not ended at its reboot"; }
[ "$(grep -c "client $PC2 reset (reset-on-boot)" "$DLOG")" = 2 ] \
	|| { cat "$DLOG"; fail "pc2 was not reset (reset-on-boot) at its reboot"; }
grep "client $PC2 reset (reset-on-boot)" "$DLOG" | tail -n 1
if grep -E "client ($PC1|$PC3) reset" "$DLOG"; then fail "a persistent PC was reset"; fi
same "$PC1" "$tmpdir/marked1.raw"
same "$PC3" "$tmpdir/marked3.raw"
same "$PC2" "$tmpdir/booted.raw"	# golden + only the LBA 2 of its second boot
same $P:outsider2 "$G"
for n in 1 2 3; do kill -0 "${VMPID[$n]}" 2>/dev/null || fail "pc$n is not running"; done

kill_vms

echo "== pc4: a mutual-CHAP client bound to its address boots through the endpoint"
# Its secrets reach iPXE only in its script (set username/password,
# reverse-username/reverse-password); iPXE checks the target's answer.
printf '%s\n' lab-pc4-secret-0042 >"$tmpdir/pc4.secret"
printf '%s\n' lab-target-secret-77 >"$tmpdir/pc4.tsecret"
ctl client add "$PC4" --mac 52:54:00:00:00:04 --ip 127.0.0.1 --chap-user pc4 \
	--chap-secret-file "$tmpdir/pc4.secret" --mutual-user pristine \
	--mutual-secret-file "$tmpdir/pc4.tsecret" || fail "adding pc4"
[ "$(cjson "$PC4" '.chap + " " + (.ip | join(","))')" = "mutual 127.0.0.1" ] || fail "pc4: chap/ip not as set"
vm 4
wait_boots 1 4
[ "${LAST[4]}" = "PRISTINE-BOOT-OK LBA3=$GOLD3" ] || fail "pc4 (CHAP) did not boot: '${LAST[4]}'"
grep -q "session 0x[0-9a-f]* logged in: initiator $PC4 " "$DLOG" || fail "no session of pc4 in the log"
grep -q "authentication failed for $PC4" "$DLOG" && fail "pc4's CHAP failed on the way"
grep -q -e lab-pc4-secret-0042 -e lab-target-secret-77 "$DLOG" && fail "a CHAP secret is in the log"
kill_vms

[ "$(sha256sum <"$G")" = "$SHA" ] || fail "the golden image changed"
daemon_alive
stop_daemon
echo "PASS ($((SECONDS)) s)"
