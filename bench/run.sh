#!/bin/bash
# run.sh - what `make bench` runs: pristined's overlay LUN against tgt (the
# Linux SCSI target framework, Debian package tgt, a file-backed LUN) and
# against a plain raw-file LUN served by our own iSCSI/SCSI code, in one
# run, plus iperf3 on the same loopback as the ceiling.  PRINTS NUMBERS
# (nothing passes or fails on a number; the issue's goals are printed as
# met/not met).  Results and method: BENCHMARKS.md.
#
# Three targets, each on its own copy of the same image:
#   raw      build/bench/raw_target, a bench-only writable raw LUN through
#            pristined's iSCSI/SCSI code (isolates our protocol code from
#            the overlay)
#   tgt      tgtd started by bench/tgt.sh: its own control port and portal,
#            LUN 1 backed by a copy of the image (rdwr backing store), tgt's
#            defaults otherwise (BENCH_TGT_PARAMS: iSCSI target parameters
#            to set, e.g. MaxRecvDataSegmentLength=262144,...)
#   overlay  pristined in quick mode, a fresh state directory = a fresh
#            overlay per client
# For every round (BENCH_ROUNDS, default 3) iperf3 runs once (server on the
# daemon's CPU, client on the load generator's, BENCH_IPERF_SECS (5) s,
# one stream), then the three targets one after the other, the order
# rotated every round (raw tgt overlay, tgt overlay raw, overlay raw tgt,
# ...), each through the same phases:
#   A  reads of the untouched image: 4 KiB random QD1 and QD32, 1 MiB
#      sequential QD8, boot storms (N sessions reading one 64 MiB boot set)
#   B  4 KiB random writes QD32 over the whole image, twice: into a fresh
#      overlay (allocation/copy-up), then the same blocks again (overwrite);
#      then 4 KiB random reads QD32 of those written blocks
#   C  1 MiB sequential writes QD8 over the whole image, twice likewise,
#      then 1 MiB sequential reads of them; pristined's VmRSS before and
#      after the first pass; reset time of that 1 GiB overlay and of one
#      holding 4 KiB
# and prints a table of medians: raw, tgt, overlay and the ratios
# overlay/tgt, raw/tgt, overlay/raw; latencies; the iperf3 ceiling; the
# issue's goals (overlay against tgt) marked met / NOT met with their
# numbers.  The boot storms are plotted (gnuplot, if installed) into
# $BUILD/bench/bootstorm.png (data: bootstorm.dat; the raw result lines of
# the run: results.txt, same directory).
#
# Environment: BENCH_ROUNDS (3), BENCH_SECS (5: length of time-bounded
# runs), BENCH_IMAGE_MIB (1024), BENCH_BOOT ("16 64 256": boot-storm
# sizes, at most 256), BENCH_PORT (13260: pristined and raw_target listen
# there, tgtd on BENCH_PORT+1, iperf3 on BENCH_PORT+3), BENCH_TGT_CONTROL
# (tgtd's control port, BENCH_PORT+2), BENCH_TGT=0 leaves tgt out,
# BENCH_TGT_PARAMS, BENCH_TGT_THREADS (tgtd -t, unset = tgt's default 16),
# BENCH_IPERF=0 leaves iperf3 out, BENCH_IPERF_SECS (5), BENCH_PIN (1),
# BENCH_DIR (scratch parent; default $TMPDIR or /tmp), BENCH_KEEP=1 keeps
# the scratch directory (daemon logs, raw results).  tgt needs root (tgtd
# makes /run/tgtd); `make bench` installs tgt, iperf3 and gnuplot-nox
# (bench/deps.sh).  Loopback only.  Every wait is bounded.
#
# BENCH_CHAIN=1 also runs build/bench/chain_bench at the end (version
# chains read in-process, no iSCSI; ~4 minutes at the defaults).  It
# shares BENCH_IMAGE_MIB, reads BENCH_LAYERS (10) and BENCH_PCT (5), and
# takes BENCH_CHAIN_SECS (3) and BENCH_CHAIN_ROUNDS (3) as its own
# BENCH_SECS/BENCH_ROUNDS.  overlay_bench is built by `make bench` but not
# run here.
#
# Then bench/memory.sh (skip it with BENCH_MEMORY=0): RAM per idle
# session and per GiB an overlay holds, about 30 s; and bench/logvol.py:
# overlay log bytes per flush when every 4 KiB write is flushed (~3 s).
# Then bench/fairness.sh (skip it with BENCH_FAIRNESS=0): a PC boots
# beside a client streaming 1 MiB reads at QD32, pristined and tgt, ~80 s.
# Then bench/datain.sh (skip it with BENCH_DATAIN=0): 1 MiB and 64 KiB
# reads with the default Data-In (32 KiB PDUs) and with --zero-copy.
# Then bench/versions.sh (skip it with BENCH_VERSIONS=0): reads through
# pristined over iSCSI from clients on v2 (1 layer), v11 (10 layers), the
# same content in one layer, and v11 flattened (~4 minutes at the
# defaults: BENCH_VERSIONS_ROUNDS (5) runs of BENCH_VERSIONS_SECS (3) s
# each; it shares BENCH_IMAGE_MIB, BENCH_PORT, BENCH_PIN, BENCH_DIR,
# BENCH_KEEP).  BENCH_ONLY=versions (or `make bench-versions`) runs only
# that phase.
# Then bench/gamedisk.sh (skip it with BENCH_GAMEDISK=0): issue 17's boot
# storm of 64 PCs that each also read 256 MiB from a game disk on LUN 1,
# against the same storm with one disk and against tgt with two LUNs (~2
# minutes; its knobs are BENCH_GAME_*, see its header; it shares
# BENCH_PORT, BENCH_TGT, BENCH_PIN, BENCH_DIR, BENCH_KEEP).
# BENCH_ONLY=storm (or `make bench-storm`) runs only that phase.
# Then bench/coldboot.sh (skip it with BENCH_COLD=0): issue 18's cold boot
# storms - warm, cold without and with the boot-set prefetch, racing it,
# tgt cold and warm, the same on a blkio-throttled model of a slow disk,
# and a live PC during a prefetch (~9 minutes; root; its knobs are
# BENCH_COLD_*, see its header), then bench/coldboot_linux.sh (the Linux
# diskless client booting cold with and without the prefetch, ~8 minutes
# under TCG; BENCH_COLD_LINUX=0 leaves it out).  BENCH_ONLY=cold (or `make
# bench-cold`) runs only those two; BENCH_ONLY=coldlinux only the second.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
if [ "${BENCH_ONLY:-}" = versions ]; then
	exec bash bench/versions.sh
fi
if [ "${BENCH_ONLY:-}" = storm ]; then
	exec bash bench/gamedisk.sh
fi
if [ "${BENCH_ONLY:-}" = cold ]; then
	exec bash bench/coldboot.sh
fi
if [ "${BENCH_ONLY:-}" = coldlinux ]; then
	exec bash bench/coldboot_linux.sh
fi
BUILD=${BUILD:-build}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECS:-5}
IMG_MIB=${BENCH_IMAGE_MIB:-1024}
BOOT=${BENCH_BOOT:-"16 64 256"}
PORT=${BENCH_PORT:-13260}
PORTAL=127.0.0.1:$PORT
TGT_PORTAL=127.0.0.1:$((PORT + 1))
TGT_CTL=${BENCH_TGT_CONTROL:-$((PORT + 2))}
IPERF_PORT=$((PORT + 3))
IPERF_SECS=${BENCH_IPERF_SECS:-5}
USE_TGT=${BENCH_TGT:-1}
USE_IPERF=${BENCH_IPERF:-1}
BENCH=$BUILD/bench/iscsi_bench
RAW_T=iqn.2026-11.org.pristine:bench-raw
OVL_T=iqn.2026-11.org.pristine:golden
TGT_T=iqn.2026-11.org.pristine:bench-tgt
INI=iqn.2026-11.org.pristine.bench:client
NBLK4K=$((IMG_MIB * 256))

for b in "$BUILD/pristined" "$BUILD/pristinectl" "$BENCH" "$BUILD/bench/raw_target"; do
	[ -x "$b" ] || { echo "run.sh: $b missing; run 'make bench'" >&2; exit 1; }
done
for n in $BOOT; do
	[ "$n" -ge 1 ] && [ "$n" -le 256 ] || { echo "run.sh: BENCH_BOOT sizes must be 1..256" >&2; exit 1; }
done
if [ "$USE_TGT" = 1 ]; then
	bench_need_tgt run
	. bench/tgt.sh
fi
if [ "$USE_IPERF" = 1 ]; then
	command -v iperf3 >/dev/null && command -v jq >/dev/null || {
		echo "run.sh: iperf3/jq missing: 'make bench' installs them; BENCH_IPERF=0 runs without the ceiling" >&2
		exit 1
	}
fi
TARGETS="raw tgt overlay"
[ "$USE_TGT" = 1 ] || TARGETS="raw overlay"

# The daemon on the last CPU, the load generator on the first (BENCH_PIN=0:
# no pinning; bench/lib.sh says why).
bench_pin_cpus

PARENT=${BENCH_DIR:-${TMPDIR:-/tmp}}
TMP=$(mktemp -d "$PARENT/pristine-bench.XXXXXX")
RES=$TMP/results          # lines: ROUND TARGET KEY RESULT-fields...
DPID="" DKIND="" IPID=""
OUT=$BUILD/bench                # the plot, its data and the result lines of the last run
mkdir -p "$OUT"

stop_daemon() { bench_stop_target; }
cleanup() {
	stop_daemon
	[ -z "$IPID" ] || { kill -TERM "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; } || true
	bench_scratch_done "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait (at most 10 s) until the daemon logged that it listens.
wait_listen() {
	local log=$1
	for _ in $(seq 100); do
		grep -q "listening on" "$log" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || { echo "run.sh: daemon died:" >&2; tail "$log" >&2; exit 1; }
		sleep 0.1
	done
	echo "run.sh: daemon did not start" >&2
	exit 1
}

start_raw() {
	: >"$TMP/raw.log.cur"
	"${PIN_D[@]}" "$BUILD/bench/raw_target" --image "$TMP/raw.img" --listen "$PORTAL" 2>"$TMP/raw.log.cur" &
	DPID=$! DKIND=raw
	wait_listen "$TMP/raw.log.cur"
	TARGET=$RAW_T CUR_PORTAL=$PORTAL LUN=0
}

start_tgt() {
	tgt_start --image "$TMP/tgt.img" --portal "$TGT_PORTAL" --control "$TGT_CTL" --dir "$TMP" \
		--target "$TGT_T" ${DCPU:+--pin "$DCPU"} ${BENCH_TGT_PARAMS:+--params "$BENCH_TGT_PARAMS"} \
		${BENCH_TGT_THREADS:+--threads "$BENCH_TGT_THREADS"} || { echo "run.sh: tgt did not start" >&2; exit 1; }
	DPID=$TGT_PID DKIND=tgt
	TARGET=$TGT_T CUR_PORTAL=$TGT_PORTAL LUN=1
}

# start WHO: the target of that name, on an untouched image or overlay.
start() {
	case $1 in
	raw) start_raw ;;
	tgt) start_tgt ;;
	overlay) start_ovl ;;
	esac
}

start_ovl() {
	rm -rf "$TMP/state"
	: >"$TMP/ovl.log.cur"
	"${PIN_D[@]}" "$BUILD/pristined" --image "$TMP/golden.img" --listen "$PORTAL" --state "$TMP/state" \
		--nop-interval 0 2>"$TMP/ovl.log.cur" &
	DPID=$! DKIND=overlay
	wait_listen "$TMP/ovl.log.cur"
	TARGET=$OVL_T CUR_PORTAL=$PORTAL LUN=0
}

# bench ROUND WHO KEY iscsi_bench-args...: one measured run.  Dirty pages
# of the previous run are written back first, so they do not compete.
bench() {
	local round=$1 who=$2 key=$3 out
	shift 3
	sync
	out=$("${PIN_C[@]}" "$BENCH" -p "$CUR_PORTAL" -T "$TARGET" -l "$LUN" -L "$key" "$@" 2>&1) || {
		# A boot storm a target cannot cope with is a result, not the
		# end of the run: recorded as FAIL, the round goes on.
		if [[ $key == boot* ]]; then
			printf '  %-8s %-18s FAILED: %s\n' "$who" "$key" "$(tail -c 400 <<<"$out" | tr '\n' ' ')"
			echo "$round $who FAIL label=$key" >>"$RES"
			return 0
		fi
		echo "run.sh: iscsi_bench failed ($who $key): $out" >&2
		exit 1
	}
	printf '  %-8s %-18s %s\n' "$who" "$key" "$(grep -v '^RESULT' <<<"$out" | tr '\n' ' ')"
	echo "$round $who $(grep '^RESULT' <<<"$out")" >>"$RES"
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$DPID/status"; }

# reset ROUND KEY IQN: time a forced reset through the admin API.
reset_time() {
	local round=$1 key=$2 iqn=$3 json secs t0 t1
	t0=$(date +%s%N)
	json=$("$BUILD/pristinectl" --state "$TMP/state" --json client reset "$iqn" --force)
	t1=$(date +%s%N)
	secs=$(grep -o '"seconds": *[0-9.e+-]*' <<<"$json" | sed 's/.*: *//')
	printf '  %-8s %-18s api seconds %.6f, pristinectl wall %.3f s\n' overlay "$key" "$secs" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')"
	echo "$round overlay EXTRA label=$key seconds=$secs wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')" >>"$RES"
}

# iperf3 ROUND: the loopback ceiling, one TCP stream, pinned like a target
# (server on the daemon's CPU) and its client (on the load generator's).
iperf_round() {
	local r=$1 json mibs
	"${PIN_D[@]}" iperf3 -s -1 -B 127.0.0.1 -p "$IPERF_PORT" >"$TMP/iperf3-server.log" 2>&1 &
	IPID=$!
	# Listening?  (Not probed by connecting: -1 serves one client only.)
	for _ in $(seq 100); do
		[ -n "$(ss -Hltn "sport = :$IPERF_PORT" 2>/dev/null)" ] && break
		sleep 0.1
	done
	json=$("${PIN_C[@]}" timeout $((IPERF_SECS + 30)) iperf3 -c 127.0.0.1 -p "$IPERF_PORT" \
		-t "$IPERF_SECS" -P 1 -J 2>&1) || {
		echo "run.sh: iperf3 failed: $(head -c 600 <<<"$json")" >&2
		exit 1
	}
	for _ in $(seq 100); do
		kill -0 "$IPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$IPID" 2>/dev/null || true
	wait "$IPID" 2>/dev/null || true
	IPID=""
	mibs=$(jq -r '.end.sum_received.bits_per_second / 8 / 1048576 | . * 10 | round / 10' <<<"$json")
	printf '  %-8s %-18s %s MiB/s (%s s, 1 stream, loopback)\n' iperf3 ceiling "$mibs" "$IPERF_SECS"
	echo "$r iperf3 RESULT label=iperf3 workload=iperf mibs=$mibs" >>"$RES"
}

# One round for one target (raw|tgt|overlay).
round() {
	local r=$1 who=$2 n before after
	# A: the untouched image.
	start "$who"
	bench "$r" "$who" rr4k_qd1 -w randread -q 1 -t "$SECS"
	bench "$r" "$who" rr4k_qd32 -w randread -q 32 -t "$SECS"
	bench "$r" "$who" sr1m_qd8 -w seqread -q 8 -t "$SECS"
	for n in $BOOT; do
		bench "$r" "$who" "boot$n" -w boot -N "$n" -I "$INI-boot$n"
	done
	stop_daemon
	# B: 4 KiB random writes, fresh then overwrite, then reads of them.
	start "$who"
	bench "$r" "$who" rw4k_qd32_fresh -w randwrite -q 32 -n "$NBLK4K" -t 120
	bench "$r" "$who" rw4k_qd32_over -w randwrite -q 32 -n "$NBLK4K" -t 120
	bench "$r" "$who" rr4k_qd32_written -w randread -q 32 -t "$SECS"
	stop_daemon
	# C: 1 MiB sequential writes, fresh then overwrite, then reads of them.
	start "$who"
	if [ "$who" = overlay ]; then
		# A client holding 4 KiB (for the reset below).  Then the RSS
		# baseline: a warm-up client writes 16 MiB the same way, so the
		# connection thread's malloc arena already holds its 1 MiB
		# command buffers, and the measured client's overlay is opened by
		# one read; the difference after is what 1 GiB of data adds.
		bench "$r" "$who" _w4k_small -w randwrite -q 1 -n 1 -r 1 -I "$INI-small"
		bench "$r" "$who" _warm -w seqwrite -q 8 -n 16 -r 16 -I "$INI-warm"
		bench "$r" "$who" _touch -w randread -q 1 -n 1 -r 1
		before=$(rss_kib)
	fi
	bench "$r" "$who" sw1m_qd8_fresh -w seqwrite -q 8 -n "$IMG_MIB" -t 120
	if [ "$who" = overlay ]; then
		after=$(rss_kib)
		printf '  %-8s %-18s VmRSS %s KiB before, %s KiB after %s MiB written\n' \
			overlay rss "$before" "$after" "$IMG_MIB"
		echo "$r overlay EXTRA label=rss_kib_per_gib value=$(( (after - before) * 1024 / IMG_MIB ))" >>"$RES"
	fi
	bench "$r" "$who" sw1m_qd8_over -w seqwrite -q 8 -n "$IMG_MIB" -t 120
	if [ "$who" = overlay ]; then
		printf '  %-8s %-18s VmRSS %s KiB after the overwrite pass\n' overlay rss "$(rss_kib)"
	fi
	bench "$r" "$who" sr1m_qd8_written -w seqread -q 8 -t "$SECS"
	if [ "$who" = overlay ]; then
		sync
		reset_time "$r" reset_4k "$INI-small"
		reset_time "$r" reset_1g "$INI"
	fi
	stop_daemon
}

echo "== pristine benchmarks: overlay LUN (pristined) vs tgt (file-backed LUN) vs raw-file LUN (our iSCSI/SCSI code)"
echo "   $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), kernel $(uname -r)"
echo "   load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   scratch $TMP on $(df -T "$TMP" | awk 'NR == 2 { print $2 " (" $1 ")" }'), loopback $PORTAL (tgt ${TGT_PORTAL})"
echo "   pinning: ${PIN_D[*]:-none} daemon (pristined, raw_target, tgtd and its threads, iperf3 -s), ${PIN_C[*]:-none} iscsi_bench (and iperf3 -c)"
echo "   rounds $ROUNDS, time-bounded runs ${SECS} s, image ${IMG_MIB} MiB, boot storms: $BOOT sessions"
echo "   targets: $TARGETS, order rotated every round; iperf3: $([ "$USE_IPERF" = 1 ] && echo "${IPERF_SECS} s, 1 stream, once per round" || echo "off")"
if [ "$USE_TGT" = 1 ]; then
	echo "   tgt: $(tgtd --version 2>/dev/null | head -1) (Debian package $(dpkg-query -W -f='${Version}' tgt 2>/dev/null || echo '?')), control port $TGT_CTL," \
	     "${BENCH_TGT_THREADS:-16 (default)} I/O threads, params: ${BENCH_TGT_PARAMS:-tgt defaults}"
fi

# This machine is a VM whose host backs guest RAM lazily: the first touch
# of a guest page costs a host fault, so writing 1 GiB into NEW page-cache
# pages measured 2.7 s against 0.5 s once the RAM had been touched (dd
# into a sparse file).  Whoever allocates fresh pages first (the overlay's
# data file) would pay for it.  Touch PRETOUCH_GIB (default 6, at most
# half of what is available) once and free it, so both targets start from
# guest memory the host already backs.
PRETOUCH_GIB=${BENCH_PRETOUCH_GIB:-6}
avail_gib=$(awk '/^MemAvailable/ { print int($2 / 2097152) }' /proc/meminfo)
[ "$PRETOUCH_GIB" -le "$avail_gib" ] || PRETOUCH_GIB=$avail_gib
if [ "$PRETOUCH_GIB" -gt 0 ] && command -v python3 >/dev/null; then
	t0=$(date +%s)
	python3 -c '
import mmap, sys
n = int(sys.argv[1]) << 30
m = mmap.mmap(-1, n)
for i in range(0, n, 4096):
    m[i] = 1
' "$PRETOUCH_GIB"
	echo "   guest RAM pre-touched: $PRETOUCH_GIB GiB in $(( $(date +%s) - t0 )) s"
else
	echo "   guest RAM not pre-touched (python3 missing or BENCH_PRETOUCH_GIB=0)"
fi

# A golden image full of data (reads are real reads, not a sparse hole),
# and identical copies for the raw target and tgt to scribble on (written
# the same way, so their page cache holds them alike).
t0=$(date +%s)
dd if=/dev/urandom of="$TMP/golden.img" bs=1M count="$IMG_MIB" status=none
cp "$TMP/golden.img" "$TMP/raw.img"
[ "$USE_TGT" = 1 ] && cp "$TMP/golden.img" "$TMP/tgt.img"
sync
echo "   images written in $(( $(date +%s) - t0 )) s (random data, not sparse)"
if command -v fincore >/dev/null; then
	echo "   page cache: warm, images resident: $(fincore -n -o RES "$TMP/golden.img" | tr -d ' ') (golden), $(fincore -n -o RES "$TMP/raw.img" | tr -d ' ') (raw)$(
	     [ "$USE_TGT" = 1 ] && echo ", $(fincore -n -o RES "$TMP/tgt.img" | tr -d ' ') (tgt)");" \
	     "$(awk '/^MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) available"
else
	echo "   page cache: warm (images just written, RAM $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo))"
fi
echo

if [ "$USE_TGT" = 1 ]; then
	# tgt's configuration as it serves: target parameters (its iSCSI
	# defaults), LUN 1's backing store.  Printed once, from a first start.
	start_tgt
	echo "   tgt target as configured (tgtadm --op show --mode target [--tid 1]):"
	{ tgtadm -C "$TGT_CTL" --lld iscsi --op show --mode target --tid 1 | grep -E 'MaxRecvDataSegmentLength|MaxXmitDataSegmentLength|MaxBurstLength|FirstBurstLength|InitialR2T|ImmediateData|MaxOutstandingR2T|MaxQueueCmd|Digest' | tr '\n' ' '
	  echo
	  tgtadm -C "$TGT_CTL" --lld iscsi --op show --mode target | awk '/LUN: 1/ { p = 1 } p && /Backing store|Size|Readonly/' | sed 's/^ *//' | tr '\n' ';'
	  echo " threads: $(ls "/proc/$DPID/task" | wc -l) (main + I/O workers)"
	} | fold -s -w 100 | sed 's/^/     /'
	stop_daemon
fi

START=$(date +%s)
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	[ "$USE_IPERF" = 1 ] && iperf_round "$r"
	# Rotate the order of the targets every round: each gets every place.
	set -- $TARGETS
	for _ in $(seq $(( (r - 1) % $# ))); do set -- "${@:2}" "$1"; done
	for who in "$@"; do
		round "$r" "$who"
	done
done
echo
echo "== medians over $ROUNDS rounds ($(( $(date +%s) - START )) s)"
cp "$RES" "$OUT/results.txt"

# The table: per workload the median of its main metric (IOPS for 4 KiB,
# MiB/s otherwise) for each target and the ratios; then median p50/p99
# latencies, the iperf3 ceiling, the issue's goals, and the boot storms'
# data for the plot.
awk -v rounds="$ROUNDS" -v plotdat="$OUT/bootstorm.dat" "$BENCH_AWK_MEDIAN"'
function num(v) { return v == "" ? "-" : sprintf("%.1f", v) }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.3f", a / b) }
function lat(who, key) {
	if (val[who, key] == "") return "-"
	return sprintf("%g/%g %s", median(p50[who, key]), median(p99[who, key]), boot[key] ? "s" : "us")
}
# goal(TEXT, VALUE, LIMIT, GE): one line, met when VALUE >= LIMIT (GE) or <= LIMIT.
function goal(text, v, limit, ge, detail,    ok) {
	if (v == "-" || v == "") { printf "  %-66s %-9s %s\n", text, "n/a", detail; return }
	ok = ge ? (v + 0 >= limit) : (v + 0 <= limit)
	printf "  %-66s %-9s %s\n", text, ok ? "met" : "NOT met", detail
}
{
	who = $2; delete f
	for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
	key = f["label"]
	if ($3 == "FAIL") { failed[who, key]++; if (!(key in seen)) { seen[key] = 1; order[++nk] = key }; next }
	if (who == "iperf3") { ceiling = ceiling " " f["mibs"]; next }
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	if ($3 == "EXTRA") {
		extra[key] = extra[key] " " (("seconds" in f) ? f["seconds"] : f["value"])
		if ("wall" in f) wall[key] = wall[key] " " f["wall"]
		next
	}
	if (f["workload"] == "boot") {
		metric[key] = "MiB/s"; val[who, key] = val[who, key] " " f["mibs"]
		p50[who, key] = p50[who, key] " " f["done_p50_s"]; p99[who, key] = p99[who, key] " " f["done_p99_s"]
		boot[key] = 1; sessions[key] = f["sessions"]
	} else {
		if (f["bs"] == 4096) { metric[key] = "IOPS"; v = f["iops"] } else { metric[key] = "MiB/s"; v = f["mibs"] }
		val[who, key] = val[who, key] " " v
		p50[who, key] = p50[who, key] " " f["lat_p50_us"]; p99[who, key] = p99[who, key] " " f["lat_p99_us"]
	}
}
END {
	printf "%-18s %-6s %10s %10s %10s %8s %8s %8s\n", "workload", "unit", "raw", "tgt", "overlay", \
		"ovl/tgt", "raw/tgt", "ovl/raw"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (key in extra || key ~ /^_/) continue
		r = median(val["raw", key]); t = median(val["tgt", key]); o = median(val["overlay", key])
		m[key, "raw"] = r; m[key, "tgt"] = t; m[key, "overlay"] = o
		printf "%-18s %-6s %10s %10s %10s %8s %8s %8s\n", key, metric[key], num(r), num(t), num(o), \
			ratio(o, t), ratio(r, t), ratio(o, r)
	}
	print ""
	printf "%-18s %-24s %-24s %-24s\n", "latency p50/p99", "raw", "tgt", "overlay"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (key in extra || key ~ /^_/) continue
		printf "%-18s %-24s %-24s %-24s\n", key, lat("raw", key), lat("tgt", key), lat("overlay", key)
	}
	print "(us: per command; boot rows, s: per-session completion times of the boot set)"
	for (k = 1; k <= nk; k++)
		for (w = 1; w <= 3; w++) {
			who = w == 1 ? "raw" : w == 2 ? "tgt" : "overlay"
			if ((who, order[k]) in failed)
				printf "FAILED: %s %s in %d of %d rounds (see the round lines above)\n", who, order[k], \
					failed[who, order[k]], rounds
		}
	ceil = median(ceiling)
	print ""
	if (ceil != "") {
		printf "iperf3 loopback ceiling, 1 stream: %s MiB/s (median; rounds:%s)\n", num(ceil), ceiling
		printf "1 MiB sequential read QD8 / ceiling: raw %s, tgt %s, overlay %s\n", \
			ratio(m["sr1m_qd8", "raw"], ceil), ratio(m["sr1m_qd8", "tgt"], ceil), ratio(m["sr1m_qd8", "overlay"], ceil)
	} else
		print "iperf3 ceiling: not measured (BENCH_IPERF=0)"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (!(key in extra)) continue
		if (key == "rss_kib_per_gib")
			printf "pristined RSS growth per GiB written into one overlay: %s KiB (median; rounds:%s)\n", median(extra[key]), extra[key]
		else
			printf "%-8s: %.6f s in the API (median of %d), pristinectl wall median %.3f s\n", key, \
				median(extra[key]), rounds, median(wall[key])
	}

	print ""
	print "goals of issue 6 (overlay = pristined through a fresh overlay; tgt = tgt on a raw file):"
	o = m["rr4k_qd32", "overlay"]; t = m["rr4k_qd32", "tgt"]
	goal("4 KiB random read QD32: overlay >= 1.5x tgt", ratio(o, t), 1.5, 1, \
		sprintf("%s vs %s IOPS = %sx", num(o), num(t), ratio(o, t)))
	o = m["sr1m_qd8", "overlay"]; t = m["sr1m_qd8", "tgt"]
	goal("1 MiB sequential read QD8: overlay >= 2x tgt", ratio(o, t), 2, 1, \
		sprintf("%s vs %s MiB/s = %sx", num(o), num(t), ratio(o, t)))
	goal("1 MiB sequential read QD8: overlay >= 60% of iperf3", ratio(o, ceil), 0.6, 1, \
		sprintf("%s vs %s MiB/s = %s", num(o), num(ceil), ratio(o, ceil)))
	o = m["rw4k_qd32_fresh", "overlay"]; t = m["rw4k_qd32_fresh", "tgt"]
	goal("4 KiB random write QD32 into a fresh overlay (copy-up) >= tgt", ratio(o, t), 1, 1, \
		sprintf("%s vs %s IOPS = %sx", num(o), num(t), ratio(o, t)))
	o = m["rw4k_qd32_over", "overlay"]; t = m["rw4k_qd32_over", "tgt"]
	goal("(also) 4 KiB random write QD32, overwriting: overlay >= tgt", ratio(o, t), 1, 1, \
		sprintf("%s vs %s IOPS = %sx", num(o), num(t), ratio(o, t)))
	for (n = 64; n <= 256; n *= 4) {
		key = "boot" n
		if (boot[key] != 1) {
			printf "  %-66s %-9s %s\n", "boot storm " n " sessions", "n/a", "(not in BENCH_BOOT)"
			continue
		}
		o = m[key, "overlay"]; t = m[key, "tgt"]
		goal("boot storm " n " sessions: aggregate overlay >= 2x tgt", ratio(o, t), 2, 1, \
			sprintf("%s vs %s MiB/s = %sx%s", num(o), num(t), ratio(o, t), \
				(("tgt", key) in failed) ? sprintf(" (tgt failed in %d rounds)", failed["tgt", key]) : ""))
		a = median(p50["overlay", key]); b = median(p99["overlay", key])
		goal("boot storm " n " sessions: overlay per-client p99/p50 <= 1.5", ratio(b, a), 1.5, 0, \
			sprintf("%s/%s s = %s (tgt: %s)", b, a, ratio(b, a), \
				ratio(median(p99["tgt", key]), median(p50["tgt", key]))))
	}

	# The boot storms, for gnuplot: sessions, then MiB/s, p50, p99 of raw, tgt, overlay.
	printf "# sessions raw_mibs raw_p50_s raw_p99_s tgt_mibs tgt_p50_s tgt_p99_s ovl_mibs ovl_p50_s ovl_p99_s\n" >plotdat
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (boot[key] != 1) continue
		line = sessions[key]
		for (w = 1; w <= 3; w++) {
			who = w == 1 ? "raw" : w == 2 ? "tgt" : "overlay"
			if (val[who, key] == "") line = line " NaN NaN NaN"
			else line = line " " median(val[who, key]) " " median(p50[who, key]) " " median(p99[who, key])
		}
		print line >plotdat
	}
}' "$RES"

# The boot-storm plot (gnuplot-nox from bench/deps.sh).
if command -v gnuplot >/dev/null && [ "$(grep -vc '^#' "$OUT/bootstorm.dat")" -gt 0 ]; then
	# (stderr to a file: with a target left out gnuplot warns about its empty columns)
	if gnuplot 2>"$TMP/gnuplot.err" <<-EOF
	set terminal pngcairo size 1200,500 font "sans,10" noenhanced
	set output "$OUT/bootstorm.png"
	set multiplot layout 1,2 title "Boot storm: N sessions each read the same 64 MiB boot set (QD4, mixed sizes), loopback, $(nproc) CPUs, medians of $ROUNDS rounds"
	set logscale x 2
	set xlabel "sessions"
	set grid
	set key top left
	set datafile missing "NaN"
	set yrange [0:*]
	set ylabel "aggregate MiB/s"
	set title "aggregate throughput"
	plot "$OUT/bootstorm.dat" using 1:8 with linespoints lw 2 title "pristined (overlay)", \\
	     "" using 1:5 with linespoints lw 2 title "tgt (raw file)", \\
	     "" using 1:2 with linespoints lw 1 dt 2 title "raw_target (raw file, our iSCSI code)"
	set ylabel "seconds"
	set title "per-session completion time: p99 (solid), p50 (dotted)"
	plot "$OUT/bootstorm.dat" using 1:10 with linespoints lw 2 lc 1 title "pristined p99", \\
	     "" using 1:9 with linespoints lw 1 dt 3 lc 1 title "pristined p50", \\
	     "" using 1:7 with linespoints lw 2 lc 2 title "tgt p99", \\
	     "" using 1:6 with linespoints lw 1 dt 3 lc 2 title "tgt p50", \\
	     "" using 1:4 with linespoints lw 1 dt 2 lc 3 title "raw_target p99"
	unset multiplot
	EOF
	then
		echo "boot-storm plot: $OUT/bootstorm.png (data $OUT/bootstorm.dat)"
	else
		echo "boot-storm plot: gnuplot failed:"
		cat "$TMP/gnuplot.err"
	fi
else
	echo "boot-storm plot: skipped (gnuplot missing or no boot storm measured); data in $OUT/bootstorm.dat"
fi

# Memory per idle session and per GiB an overlay holds (bench/memory.sh;
# BENCH_MEMORY=0 skips it).
if [ "${BENCH_MEMORY:-1}" = 1 ]; then
	echo
	echo "== memory (bench/memory.sh)"
	bash bench/memory.sh
	python3 bench/logvol.py --binary "$BUILD/pristined"
fi

# Fairness: a PC boots beside a client streaming at QD32 (bench/fairness.sh;
# BENCH_FAIRNESS=0 skips it).
if [ "${BENCH_FAIRNESS:-1}" = 1 ]; then
	echo
	bash bench/fairness.sh
fi

# How Data-In is sent: 32 KiB PDUs read PDU by PDU vs --zero-copy
# (bench/datain.sh; BENCH_DATAIN=0 skips it).
if [ "${BENCH_DATAIN:-1}" = 1 ]; then
	echo
	bash bench/datain.sh
fi

# Version chains (frozen layers): in-process, opt-in (see the header).
if [ "${BENCH_CHAIN:-0}" = 1 ]; then
	echo
	[ -x "$BUILD/bench/chain_bench" ] || { echo "run.sh: $BUILD/bench/chain_bench missing; run 'make bench'" >&2; exit 1; }
	BENCH_SECS=${BENCH_CHAIN_SECS:-3} BENCH_ROUNDS=${BENCH_CHAIN_ROUNDS:-3} "$BUILD/bench/chain_bench" "$TMP"
fi

# Version chains through the daemon over iSCSI (see the header).
if [ "${BENCH_VERSIONS:-1}" = 1 ]; then
	echo
	bash bench/versions.sh
fi

# Issue 17: a boot storm with a game disk (see the header).
if [ "${BENCH_GAMEDISK:-1}" = 1 ]; then
	echo
	bash bench/gamedisk.sh
fi

# Issue 18: cold boot storms and the boot-set prefetch (see the header).
if [ "${BENCH_COLD:-1}" = 1 ]; then
	echo
	bash bench/coldboot.sh
fi
