#!/bin/bash
# coldboot_linux.sh - issue 18 with a real client: the Linux diskless PC
# of tests/cluster/linuxpc_lib.sh (QEMU, SeaBIOS, Debian's iPXE ROM ->
# the boot endpoint -> sanhook (iBFT) -> Debian's kernel and an initramfs
# over TFTP -> iscsistart -> the ext4 root on LUN 0 -> its /sbin/init
# prints LINUXPC-ROOT) boots from pristined warm and cold, with and
# without the boot-set prefetch.  Part of `make bench` through
# bench/coldboot.sh's BENCH_ONLY=cold run (BENCH_COLD_LINUX=0 leaves it
# out) or alone: BENCH_ONLY=coldlinux (bench/run.sh).  PRINTS NUMBERS.
# Results: BENCHMARKS.md, "Issue 18: cold boot storms".
#
# One pristined (configuration file: a boot endpoint, the default NOP
# interval - iPXE's session is left dead when the kernel takes the NIC,
# and only NOPs end it before the kernel logs in -, the image lab =
# linuxpc_disk's root disk of BENCH_COLDLINUX_DISK_MIB (64) MiB, one PC
# pc1, policy persistent), its state kept across restarts.  The PC boots
# twice to teach the daemon its boot set (each guest kept running 13 s
# after it synced, so that its recording settles, then the version's
# boot_set must count it), then, BENCH_COLDLINUX_ROUNDS (3) times:
#   warm        the daemon restarted (its page cache warm from the boots
#               before), boot
#   cold_nopf   daemon stopped, `sync; echo 3 > /proc/sys/vm/drop_caches`,
#               started with prefetch = no, boot
#   cold_pf     stopped, caches dropped, started with prefetch = yes, wait
#               until the version's boot_set.prefetch is "done", boot
# and the two cold cases again with the daemon's reads throttled by a
# cgroup v1 blkio group (BENCH_COLD_IOPS (400)/s, BENCH_COLD_BPS
# (200000000) B/s: the slow-disk MODEL of bench/coldboot.sh; unless
# BENCH_COLD_MODEL=0).  The boot time is from QEMU's start to the root's
# init printing LINUXPC-ROOT on the console (polled every 50 ms); the
# medians are printed.  QEMU runs under TCG, as the tests run it (each
# boot ~30-40 s here, CPU-bound); BENCH_COLDLINUX_KVM=1 uses /dev/kvm
# (on this VM's nested KVM, kvm-pvm, the guest's SeaBIOS/iPXE triple-
# faults: not the default).
# Only the PC's iSCSI disk goes through pristined: the kernel and the
# initramfs come over QEMU's TFTP, so the boot set is the root's reads.
#
# Needs root, qemu-system-x86_64, socat, the iPXE ROM and the linuxpc
# tools (tests/lib/deps.sh, set linuxpc); says why and exits 0 without
# them.  Every wait is bounded (BENCH_COLDLINUX_WAIT (150) s per boot,
# BENCH_COLD_WAIT (120) s for a prefetch or a boot set); every process is
# stopped by its PID.  About 8 minutes at the defaults (17 boots under TCG).
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
ROUNDS=${BENCH_COLDLINUX_ROUNDS:-3}
DISK_MIB=${BENCH_COLDLINUX_DISK_MIB:-64}
USE_MODEL=${BENCH_COLD_MODEL:-1}
M_IOPS=${BENCH_COLD_IOPS:-400}
M_BPS=${BENCH_COLD_BPS:-200000000}
WAIT=${BENCH_COLD_WAIT:-120}
LINUXPC_WAIT=${BENCH_COLDLINUX_WAIT:-150}
PRISTINED=$BUILD/pristined
CTL=$BUILD/pristinectl
CG_ROOT=/sys/fs/cgroup/blkio

# What tests/lib/sanboot.sh and tests/cluster/linuxpc_lib.sh expect of
# their caller (tests/lib/common.sh's, in a bench's words).
skip() { echo "coldboot_linux.sh: left out: $*"; exit 0; }
fail() { echo "coldboot_linux.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (drop_caches, blkio cgroup)"
for b in "$PRISTINED" "$CTL"; do
	[ -x "$b" ] || fail "$b missing; run 'make bench-build'"
done
command -v jq >/dev/null || skip "jq not installed (make deps)"
"$PRISTINED" --help 2>&1 | grep -q -- '--no-prefetch' || skip "this pristined has no boot-set prefetch (issue 18)"
tmpdir=$(mktemp -d "${BENCH_COLD_DIR:-/var/tmp}/pristine-coldlinux.XXXXXX")
DPID="" QPID="" CG=""
. tests/lib/sanboot.sh
sanboot_check_tools
. tests/cluster/linuxpc_lib.sh
linuxpc_check_tools
ACCEL=()
if [ "${BENCH_COLDLINUX_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then
	ACCEL=(-accel kvm)
fi
if [ "$USE_MODEL" = 1 ] && [ ! -w "$CG_ROOT/cgroup.procs" ]; then
	echo "coldboot_linux.sh: no cgroup v1 blkio hierarchy: the slow-disk model is left out"
	USE_MODEL=0
fi

kill_qemu() {
	[ -n "$QPID" ] || return 0
	bench_kill "$QPID"
	QPID=""
}
stop_daemon() {
	[ -n "$DPID" ] || return 0
	bench_kill "$DPID"
	DPID=""
}
model_remove() { bench_blkio_remove; }
cleanup() {
	kill_qemu
	stop_daemon
	model_remove
	bench_scratch_done "$tmpdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STATE=$tmpdir/state
PORT=${BENCH_COLDLINUX_PORT:-13266}
BOOTPORT=$((PORT + 1))
INI=iqn.2026-11.org.pristine.bench:linuxpc1
MAC=52:54:00:00:18:01
TGT=iqn.2026-11.org.pristine:lab
NET=10.0.2
SRV=$NET.100
RES=$tmpdir/results       # lines: CASE SECONDS-TO-ROOT SECONDS-TO-SYNCED

# write_conf PREFETCH(yes|no)
write_conf() {
	cat >"$tmpdir/pristine.conf" <<-EOF
	[server]
	listen = 127.0.0.1:$PORT
	state = $STATE
	boot-listen = 127.0.0.1:$BOOTPORT
	boot-portal = $SRV:3260
	prefetch = $1

	[defaults]
	enroll = deny

	[image lab]
	path = $tmpdir/lab.raw

	[client pc1]
	initiator = $INI
	mac = $MAC
	image = lab
	policy = persistent
	EOF
}

# start PREFETCH(yes|no) MODEL(0|1): the daemon (in the model's blkio
# group from its first instruction when MODEL is 1).
start() {
	local pre=()
	write_conf "$1"
	[ "$2" = 0 ] || pre=(bash -c 'echo $$ >"$0"; exec "$@"' "$CG/cgroup.procs")
	: >"$tmpdir/d.log.cur"
	"${pre[@]}" "$PRISTINED" -c "$tmpdir/pristine.conf" 2>"$tmpdir/d.log.cur" &
	DPID=$!
	T_START=$(date +%s%N)
	for _ in $(seq 100); do
		grep -q "boot endpoint on" "$tmpdir/d.log.cur" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$tmpdir/d.log.cur" >&2
	fail "pristined did not start (or no boot endpoint)"
}

bootset() { bench_bootset "$CTL" "$STATE" lab "$1"; }

# wait_boots N: until the current version's boot set counts N boots.
wait_boots() {
	local t0=$SECONDS b=""
	while [ $((SECONDS - t0)) -lt "$WAIT" ]; do
		b=$(bootset boots)
		[ -n "$b" ] && [ "$b" -ge "$1" ] && break
		sleep 1
	done
	echo "  boot set: $(bootset bytes) bytes in $(bootset chunks) chunks, $b boots ($((SECONDS - t0)) s waited)"
}

wait_prefetched() {
	local t0=$SECONDS st=""
	while [ $((SECONDS - t0)) -lt "$WAIT" ]; do
		st=$(bootset prefetch)
		case $st in done | failed | cancelled) break ;; esac
		sleep 0.05
	done
	PF_NOTE="prefetch $st $(awk -v a="$T_START" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s after the start"
}

drop_caches() { bench_drop_caches; }

# boot CASE [NOTE]: one boot of pc1; its times into RES.  LINGER (0):
# seconds the guest is kept running after it synced (a learning boot:
# its recording settles 10 s after its last new chunk, and the next
# boot's script would drop one still open).
LINGER=0
boot() {
	local c=$1 dir=$tmpdir/boot-$1-$RANDOM t0 t_root="" t_sync="" now
	mkdir -p "$dir"
	: >"$dir/serial.log"
	t0=$(date +%s%N)
	timeout -k 5 $((LINUXPC_WAIT + 30)) qemu-system-x86_64 "${ACCEL[@]}" -M pc -m 512 -nodefaults \
		-display none -vga std -no-reboot -boot n -uuid 5a5a5a5a-0000-4000-8000-000000001801 \
		-monitor "unix:$dir/mon.sock,server=on,wait=off" \
		-serial "file:$dir/serial.log" \
		-netdev "user,id=n0,restrict=on,net=$NET.0/24,tftp=$tmpdir/tftp,bootfile=pc1.ipxe,guestfwd=tcp:$SRV:80-cmd:socat - TCP:127.0.0.1:$BOOTPORT,guestfwd=tcp:$SRV:3260-cmd:socat - TCP:127.0.0.1:$PORT" \
		-device "e1000,netdev=n0,mac=$MAC,romfile=$SANBOOT_ROM" \
		>"$dir/qemu.log" 2>&1 &
	QPID=$!
	while :; do
		now=$(date +%s%N)
		if [ -z "$t_root" ] && grep -a -q "^LINUXPC-ROOT" "$dir/serial.log"; then t_root=$now; fi
		if grep -a -q "^LINUXPC-SYNCED" "$dir/serial.log"; then t_sync=$now; break; fi
		grep -a -q -E "LINUXPC-ERR|Kernel panic" "$dir/serial.log" && break
		kill -0 "$QPID" 2>/dev/null || break
		[ $(( (now - t0) / 1000000000 )) -lt "$LINUXPC_WAIT" ] || break
		sleep 0.05
	done
	if [ -z "$t_sync" ]; then
		linuxpc_await "$QPID" "$dir" "$c" || true
		kill_qemu
		printf '  %-16s FAILED (no LINUXPC-SYNCED in %s s)\n' "$c" "$LINUXPC_WAIT"
		echo "$c FAIL" >>"$RES"
		return 0
	fi
	[ "$LINGER" = 0 ] || sleep "$LINGER"
	kill_qemu
	awk -v c="$c" -v a="$t0" -v r="$t_root" -v s="$t_sync" -v note="${2:-}" 'BEGIN {
		printf "  %-16s root init after %6.2f s, synced after %6.2f s%s\n", c, (r - a) / 1e9, (s - a) / 1e9, note == "" ? "" : "; " note
	}'
	echo "$c $(awk -v a="$t0" -v r="$t_root" -v s="$t_sync" 'BEGIN { printf "%.3f %.3f", (r - a) / 1e9, (s - a) / 1e9 }')" >>"$RES"
}

echo "== issue 18: the Linux diskless client, cold and warm (bench/coldboot_linux.sh)"
echo "   $(nproc) CPUs, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); QEMU ${ACCEL[*]:-TCG}, kernel $LINUXPC_KVER"
linuxpc_build "$tmpdir/lp"
linuxpc_disk "$tmpdir/lab.raw" "$DISK_MIB"
mkdir -p "$tmpdir/tftp"
cp "$tmpdir/lp/vmlinuz" "$tmpdir/lp/initrd.img" "$tmpdir/tftp/"
printf '%s\n' '#!ipxe' dhcp \
	"imgfetch --name endpoint http://$SRV/boot.ipxe?mac=\${mac:hexhyp}&uuid=\${uuid}&ip=\${ip}" \
	'imgfree endpoint' \
	"set initiator-iqn $INI" \
	"sanhook iscsi:$SRV:::0:$TGT" \
	"kernel vmlinuz console=ttyS0 panic=1 linuxpc.luns=1" \
	'initrd initrd.img' boot >"$tmpdir/tftp/pc1.ipxe"
if [ "$USE_MODEL" = 1 ]; then
	bench_blkio_make "$tmpdir/lab.raw" "$M_IOPS" "$M_BPS" pristine-coldlinux
fi
echo "   disk $DISK_MIB MiB (linuxpc_disk: MBR, ext4 root with busybox); rounds $ROUNDS"
: >"$RES"
START=$(date +%s)

echo "-- learning: two boots"
start yes 0
LINGER=13
boot _learn1
wait_boots 1
boot _learn2
wait_boots 2
LINGER=0
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	stop_daemon
	start yes 0
	boot warm
	for m in 0 $([ "$USE_MODEL" = 1 ] && echo 1); do
		sfx=$([ "$m" = 1 ] && echo _model || true)
		stop_daemon
		drop_caches
		start no "$m"
		boot "cold_nopf$sfx"
		stop_daemon
		drop_caches
		start yes "$m"
		wait_prefetched
		boot "cold_pf$sfx" "$PF_NOTE"
	done
done
echo "  boot set at the end: $(bootset bytes) bytes in $(bootset chunks) chunks, $(bootset boots) boots"
stop_daemon
cp "$RES" "$BUILD/bench/coldboot-linux-results.txt" 2>/dev/null || true

echo
echo "== Linux client boot times: medians of $ROUNDS ($(( $(date +%s) - START )) s in all)"
awk "$BENCH_AWK_MEDIAN"'
$2 == "FAIL" { failed[$1]++; next }
{ root[$1] = root[$1] " " $2; sync[$1] = sync[$1] " " $3 }
END {
	n = split("warm cold_nopf cold_pf cold_nopf_model cold_pf_model", cs, " ")
	printf "%-18s %14s %14s\n", "case", "to root init", "to synced"
	for (i = 1; i <= n; i++) {
		c = cs[i]
		if (root[c] == "" && !failed[c]) continue
		printf "%-18s %13.2fs %13.2fs%s\n", c, median(root[c]), median(sync[c]), failed[c] ? sprintf("  (failed %d times)", failed[c]) : ""
	}
	w = median(root["warm"])
	for (s = 0; s <= 1; s++) {
		x = s ? "_model" : ""
		a = median(root["cold_pf" x]); b = median(root["cold_nopf" x])
		if (a == "" || b == "") continue
		printf "cold%s: with prefetch %.2f s vs without %.2f s (%.2fx faster), warm %.2f s (cold+prefetch = %.2fx warm)\n",
			s ? " (model)" : "", a, b, b / a, w, a / w
	}
}' "$RES"
