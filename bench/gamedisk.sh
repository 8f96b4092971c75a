#!/bin/bash
# gamedisk.sh - issue 17's boot storm with a game disk ("What it must
# show" 4), part of `make bench` (bench/run.sh runs it after its own
# phases; BENCH_ONLY=storm or `make bench-storm` runs only this).  PRINTS
# NUMBERS: nothing passes or fails on a number.  Method and results:
# BENCHMARKS.md, "Issue 17: boot storm with a game disk".
#
# BENCH_GAME_PCS (64) PCs boot at once, each a distinct initiator
# (iscsi_bench -w boot: session i logs in as INITIATOR-i).  Four cases,
# each on a freshly started target, in every round (the order rotated
# round by round):
#   one        pristined, configuration file: [image lab] (the golden,
#              BENCH_GAME_BOOT_MIB (64) MiB of random data) and [image
#              games] (BENCH_GAME_MIB (256) MiB of random data), no
#              attachment: each PC reads the boot set (the whole golden in
#              mixed 4 KiB .. 1 MiB extents, one shuffled order, QD4) from
#              LUN 0 - the storm of bench/run.sh, in config mode
#   game       the same file plus `disks = games` under [image lab]: every
#              PC also sees the game disk as LUN 1 (policy overlay: its own
#              overlay on each disk) and reads all BENCH_GAME_MIB MiB of it
#              (64 KiB .. 1 MiB extents, one shuffled order, QD
#              BENCH_GAME_QD (4)) in the SAME iSCSI session as its boot
#              set, as a PC's initiator does with the LUNs of its target;
#              the game reads start with the boot set (BENCH_GAME_START=
#              with, the most the game can cost the boot) or each PC's once
#              its boot set is done (after)
#   tgt_one    tgtd (bench/tgt.sh) with the golden as LUN 1 and the game
#              image as LUN 2 of one target; the PCs read the boot set only
#   tgt_game   the same tgtd; the PCs read both, as in game
# Both targets serve the same two files (reads only: the page cache holds
# them once, warm).  Printed per case (medians over the rounds): the
# aggregate MiB/s over every byte read, each PC's time for both disks and
# for its boot set alone (p50/p99/max, from the common start), the
# daemon's CPU seconds (in all and per GiB served: the one figure the
# rest of the box's load hardly moves), the load generator's CPU seconds
# per GiB (iscsi_bench's own, on its CPU: what the target's way of
# sending costs the initiators); then what the game disk costs the boot set (the
# boot set's per-PC times with the game disk over those without it) and
# pristined against tgt.
#
# Environment: BENCH_GAME_PCS (64, at most 256), BENCH_GAME_MIB (256: read
# per PC; a quick run: BENCH_GAME_MIB=32), BENCH_GAME_BOOT_MIB (64),
# BENCH_GAME_QD (4), BENCH_GAME_START (with|after), BENCH_GAME_ROUNDS (3);
# shared with bench/run.sh: BENCH_PORT (13260: pristined; tgtd on +1, its
# control port +2), BENCH_TGT=0 (tgt left out), BENCH_PIN (1: daemon on
# the last CPU, iscsi_bench on the first), BENCH_DIR, BENCH_KEEP=1 (keep
# the scratch directory: daemon logs, raw results), BUILD.  tgt needs root
# (bench/tgt.sh).  Loopback only; every wait is bounded; every process is
# stopped by its PID.  About 2 minutes at the defaults on 2 CPUs.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
PCS=${BENCH_GAME_PCS:-64}
GAME_MIB=${BENCH_GAME_MIB:-256}
BOOT_MIB=${BENCH_GAME_BOOT_MIB:-64}
GQD=${BENCH_GAME_QD:-4}
GSTART=${BENCH_GAME_START:-with}
ROUNDS=${BENCH_GAME_ROUNDS:-3}
PORT=${BENCH_PORT:-13260}
PORTAL=127.0.0.1:$PORT
TGT_PORTAL=127.0.0.1:$((PORT + 1))
TGT_CTL=${BENCH_TGT_CONTROL:-$((PORT + 2))}
USE_TGT=${BENCH_TGT:-1}
BENCH=$BUILD/bench/iscsi_bench
OVL_T=iqn.2026-11.org.pristine:lab
TGT_T=iqn.2026-11.org.pristine:bench-tgt
INI=iqn.2026-11.org.pristine.bench:pc

for b in "$BUILD/pristined" "$BENCH"; do
	[ -x "$b" ] || { echo "gamedisk.sh: $b missing; run 'make bench-build'" >&2; exit 1; }
done
for v in PCS GAME_MIB BOOT_MIB GQD ROUNDS; do
	case ${!v} in
	'' | *[!0-9]* | 0) echo "gamedisk.sh: $v must be a positive number" >&2; exit 1 ;;
	esac
done
[ "$PCS" -le 256 ] || { echo "gamedisk.sh: BENCH_GAME_PCS must be at most 256" >&2; exit 1; }
case $GSTART in
with) GARGS=() ;;
after) GARGS=(-A) ;;
*) echo "gamedisk.sh: BENCH_GAME_START must be with or after" >&2; exit 1 ;;
esac
if [ "$USE_TGT" = 1 ]; then
	bench_need_tgt gamedisk
	. bench/tgt.sh
fi
CASES="one game tgt_one tgt_game"
[ "$USE_TGT" = 1 ] || CASES="one game"

# Pinned as bench/run.sh pins (bench/lib.sh says why).
bench_pin_cpus

PARENT=${BENCH_DIR:-${TMPDIR:-/tmp}}
TMP=$(mktemp -d "$PARENT/pristine-gamedisk.XXXXXX")
RES=$TMP/results          # lines: ROUND CASE RESULT-fields... cpu_s=..
DPID="" DKIND=""
OUT=$BUILD/bench
mkdir -p "$OUT"

stop_daemon() {
	local kind=$DKIND
	bench_stop_target
	# every pristined's log, for BENCH_KEEP
	[ "$kind" != overlay ] || cat "$TMP/ovl.log.cur" >>"$TMP/ovl.log"
}
cleanup() {
	stop_daemon
	bench_scratch_done "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# write_conf FILE WITH-GAME(0|1): pristined's configuration for a case.
write_conf() {
	cat >"$1" <<-EOF
	; bench/gamedisk.sh: $([ "$2" = 1 ] && echo "every PC of lab also sees games as LUN 1" || echo "one disk per PC")
	[server]
	listen = $PORTAL
	state = $TMP/state
	nop-interval = 0

	[defaults]
	enroll = auto
	image = lab
	policy = persistent

	[image lab]
	path = $TMP/golden.img
	$([ "$2" = 1 ] && echo "disks = games")

	[image games]
	path = $TMP/games.img
	EOF
}

# start_ovl CONF: pristined on a fresh state directory; returns 1 (its
# log kept in $TMP/ovl-fail.log) when it does not come up in 10 s.
start_ovl() {
	rm -rf "$TMP/state"
	: >"$TMP/ovl.log.cur"
	"${PIN_D[@]}" "$BUILD/pristined" -c "$1" 2>"$TMP/ovl.log.cur" &
	DPID=$! DKIND=overlay
	for _ in $(seq 100); do
		grep -q "listening on" "$TMP/ovl.log.cur" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	cp "$TMP/ovl.log.cur" "$TMP/ovl-fail.log"
	stop_daemon
	return 1
}

start_tgt() {
	tgt_start --image "$TMP/golden.img" --image2 "$TMP/games.img" --portal "$TGT_PORTAL" \
		--control "$TGT_CTL" --dir "$TMP" --target "$TGT_T" ${DCPU:+--pin "$DCPU"} ||
		{ echo "gamedisk.sh: tgt did not start" >&2; exit 1; }
	DPID=$TGT_PID DKIND=tgt
}

# cpu_s PID: CPU seconds (user + system, all threads) the process used.
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# run_case ROUND CASE: one storm on a freshly started target.  A storm
# that fails (a target that cannot serve it, LUN 1 missing) is a result:
# recorded as FAIL with its reason, the round goes on.
run_case() {
	local r=$1 c=$2 portal target lun game=() out c0 c1 why line
	case $c in
	one | game)
		write_conf "$TMP/$c.conf" "$([ "$c" = game ] && echo 1 || echo 0)"
		if ! start_ovl "$TMP/$c.conf"; then
			why=$(grep -m1 -iE 'error|invalid|unknown|cannot' "$TMP/ovl-fail.log" || tail -1 "$TMP/ovl-fail.log")
			printf '  %-9s FAILED: pristined did not start: %s\n' "$c" "$why"
			echo "$r $c FAIL" >>"$RES"
			return 0
		fi
		portal=$PORTAL target=$OVL_T lun=0
		[ "$c" = game ] && game=(-G "1:$GAME_MIB" -Q "$GQD" "${GARGS[@]}")
		;;
	tgt_one | tgt_game)
		start_tgt
		portal=$TGT_PORTAL target=$TGT_T lun=1
		[ "$c" = tgt_game ] && game=(-G "2:$GAME_MIB" -Q "$GQD" "${GARGS[@]}")
		;;
	esac
	sync
	c0=$(cpu_s "$DPID")
	if out=$("${PIN_C[@]}" "$BENCH" -p "$portal" -T "$target" -l "$lun" -w boot -N "$PCS" -r "$BOOT_MIB" \
		-I "$INI-r$r-$c" -L "$c" "${game[@]}" 2>&1); then
		c1=$(cpu_s "$DPID")
		line="$(grep '^RESULT' <<<"$out") cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')"
		echo "$r $c $line" >>"$RES"
		# One line: the run's aggregate, per-PC times, the daemon's CPU.
		awk -v c="$c" '{
			for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) g[kv[1]] = kv[2]
			printf "  %-9s %7.1f MiB/s in %6.2f s; per PC both disks p50/p99/max %.3f/%.3f/%.3f s", \
				c, g["mibs"], g["secs"], g["done_p50_s"], g["done_p99_s"], g["done_max_s"]
			if ("boot_p50_s" in g)
				printf ", boot set %.3f/%.3f/%.3f s; %.0f+%.0f MiB read", g["boot_p50_s"], \
					g["boot_p99_s"], g["boot_max_s"], g["boot_bytes"] / 1048576, g["game_bytes"] / 1048576
			printf "; CPU daemon %.2f s, iscsi_bench %.2f s\n", g["cpu_s"], g["client_cpu_s"]
		}' <<<"$line"
	else
		printf '  %-9s FAILED: %s\n' "$c" "$(tail -c 300 <<<"$out" | tr '\n' ' ')"
		echo "$r $c FAIL" >>"$RES"
	fi
	stop_daemon
}

echo "== issue 17: boot storm with a game disk ($PCS PCs; bench/gamedisk.sh)"
echo "   $(nproc) CPUs, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); pinning: ${PIN_D[*]:-none} daemon, ${PIN_C[*]:-none} iscsi_bench"
echo "   each PC: one iSCSI session (its own initiator name), boot set = all $BOOT_MIB MiB of LUN 0 (tgt: LUN 1)," \
     "mixed 4 KiB..1 MiB extents, QD4;"
echo "   with the game disk also all $GAME_MIB MiB of LUN 1 (tgt: LUN 2) in the same session, 64 KiB..1 MiB extents," \
     "QD$GQD, starting $GSTART the boot set"
echo "   pristined: config file, enroll = auto, a fresh state per storm (each PC its own overlay on each disk," \
     "policy overlay); tgt: one target, both files as LUN 1 and 2"
echo "   cases: $CASES; $ROUNDS rounds, the order rotated every round"
t0=$(date +%s)
dd if=/dev/urandom of="$TMP/golden.img" bs=1M count="$BOOT_MIB" status=none
dd if=/dev/urandom of="$TMP/games.img" bs=1M count="$GAME_MIB" status=none
sync
echo "   images written in $(( $(date +%s) - t0 )) s (random data, page cache warm)"
START=$(date +%s)
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	set -- $CASES
	for _ in $(seq $(( (r - 1) % $# ))); do set -- "${@:2}" "$1"; done
	for c in "$@"; do
		run_case "$r" "$c"
	done
done
cp "$RES" "$OUT/gamedisk-results.txt"
echo
echo "== boot storm with a game disk: medians over $ROUNDS rounds ($(( $(date +%s) - START )) s; raw lines: $OUT/gamedisk-results.txt)"
awk -v rounds="$ROUNDS" -v pcs="$PCS" -v gmib="$GAME_MIB" -v bmib="$BOOT_MIB" "$BENCH_AWK_MEDIAN"'
function m(c, k) { return median(v[c, k]) }
function f(x, fmt) { return x == "" ? "-" : sprintf(fmt, x) }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2fx", a / b) }
{
	c = $2
	if ($3 == "FAIL") { failed[c]++; next }
	delete g
	for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2) g[kv[1]] = kv[2]
	# One disk: the boot set is all the PC read.
	if (!("boot_p50_s" in g)) { g["boot_p50_s"] = g["done_p50_s"]; g["boot_p99_s"] = g["done_p99_s"]; g["boot_max_s"] = g["done_max_s"] }
	# The daemon CPU seconds per GiB served: unlike MiB/s and seconds,
	# hardly moved by whatever else runs on the box.
	gib = (g["sessions"] * g["set_mib"] + g["game_bytes"] / 1048576) / 1024
	g["cpu_gib"] = g["cpu_s"] / gib
	g["ccpu_gib"] = g["client_cpu_s"] / gib
	n = split("mibs done_p50_s done_p99_s done_max_s boot_p50_s boot_p99_s boot_max_s cpu_s cpu_gib ccpu_gib", ks, " ")
	for (i = 1; i <= n; i++) v[c, ks[i]] = v[c, ks[i]] " " g[ks[i]]
	got[c]++
}
END {
	name["one"] = "pristined, one disk"; name["game"] = "pristined + game disk"
	name["tgt_one"] = "tgt, one disk"; name["tgt_game"] = "tgt + game disk"
	printf "%-24s %10s  %-22s  %-22s %8s %8s %8s\n", "", "aggregate", "per PC, both disks", "per PC, boot set", "daemon", "CPU s", "client"
	printf "%-24s %10s  %-22s  %-22s %8s %8s %8s\n", "case", "MiB/s", "p50/p99/max (s)", "p50/p99/max (s)", "CPU (s)", "per GiB", "CPU s/GiB"
	split("one game tgt_one tgt_game", cs, " ")
	for (i = 1; i <= 4; i++) {
		c = cs[i]
		if (!got[c] && !failed[c]) continue
		if (!got[c]) { printf "%-24s FAILED in all %d rounds (see the round lines)\n", name[c], failed[c]; continue }
		printf "%-24s %10s  %-22s  %-22s %8s %8s %8s%s\n", name[c], f(m(c, "mibs"), "%.1f"),
			sprintf("%.3f/%.3f/%.3f", m(c, "done_p50_s"), m(c, "done_p99_s"), m(c, "done_max_s")),
			sprintf("%.3f/%.3f/%.3f", m(c, "boot_p50_s"), m(c, "boot_p99_s"), m(c, "boot_max_s")),
			f(m(c, "cpu_s"), "%.2f"), f(m(c, "cpu_gib"), "%.3f"), f(m(c, "ccpu_gib"), "%.3f"),
			failed[c] ? sprintf("  (failed in %d rounds)", failed[c]) : ""
	}
	printf "(%d PCs; one disk: %d MiB each; with the game disk: %d + %d MiB each)\n", pcs, bmib, bmib, gmib
	print ""
	print "what the game disk costs the boot set (per-PC boot-set time with / without it):"
	printf "  pristined: p50 %s, p99 %s, max %s\n", ratio(m("game", "boot_p50_s"), m("one", "boot_p50_s")),
		ratio(m("game", "boot_p99_s"), m("one", "boot_p99_s")), ratio(m("game", "boot_max_s"), m("one", "boot_max_s"))
	if (got["tgt_one"] || got["tgt_game"])
		printf "  tgt:       p50 %s, p99 %s, max %s\n", ratio(m("tgt_game", "boot_p50_s"), m("tgt_one", "boot_p50_s")),
			ratio(m("tgt_game", "boot_p99_s"), m("tgt_one", "boot_p99_s")), ratio(m("tgt_game", "boot_max_s"), m("tgt_one", "boot_max_s"))
	if (got["game"] && got["one"])
		printf "  (bytes per PC %.1fx the one-disk storm; pristined aggregate %s of the one-disk one)\n",
			(bmib + gmib) / bmib, ratio(m("game", "mibs"), m("one", "mibs"))
	if (got["tgt_game"] || got["tgt_one"]) {
		print ""
		print "pristined against tgt:"
		printf "  one disk:       aggregate %s, per-PC p99 %s, daemon CPU per GiB %s of tgt'"'"'s\n",
			ratio(m("one", "mibs"), m("tgt_one", "mibs")), ratio(m("one", "done_p99_s"), m("tgt_one", "done_p99_s")),
			ratio(m("one", "cpu_gib"), m("tgt_one", "cpu_gib"))
		printf "  with game disk: aggregate %s, per-PC p99 (both disks) %s, boot-set p99 %s, daemon CPU per GiB %s of tgt'"'"'s\n",
			ratio(m("game", "mibs"), m("tgt_game", "mibs")), ratio(m("game", "done_p99_s"), m("tgt_game", "done_p99_s")),
			ratio(m("game", "boot_p99_s"), m("tgt_game", "boot_p99_s")), ratio(m("game", "cpu_gib"), m("tgt_game", "cpu_gib"))
	}
}' "$RES"
