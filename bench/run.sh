#!/bin/bash
# run.sh - what `make bench` runs: the overlay LUN against a plain raw-file
# LUN, same iSCSI/SCSI code, one run, PRINTS NUMBERS (nothing passes or
# fails on a number).  Results and method: BENCHMARKS.md.
#
# For every round (BENCH_ROUNDS, default 3) it runs the raw target
# (build/bench/raw_target, a bench-only writable raw LUN) and then pristined
# (a fresh state directory = a fresh overlay) through the same phases:
#   A  reads of the untouched image: 4 KiB random QD1 and QD32, 1 MiB
#      sequential QD8, boot storms (N sessions reading one 64 MiB boot set)
#   B  4 KiB random writes QD32 over the whole image, twice: into a fresh
#      overlay (allocation/copy-up), then the same blocks again (overwrite);
#      then 4 KiB random reads QD32 of those written blocks
#   C  1 MiB sequential writes QD8 over the whole image, twice likewise,
#      then 1 MiB sequential reads of them; pristined's VmRSS before and
#      after the first pass; reset time of that 1 GiB overlay and of one
#      holding 4 KiB
# and prints a table of medians: raw, overlay, overlay/raw.
#
# Environment: BENCH_ROUNDS (3), BENCH_SECS (5: length of time-bounded
# runs), BENCH_IMAGE_MIB (1024), BENCH_BOOT ("16 64": boot-storm sizes),
# BENCH_PORT (13260), BENCH_DIR (scratch parent; default $TMPDIR or /tmp),
# BENCH_KEEP=1 keeps the scratch directory (daemon logs, raw results).
# Loopback only.  Every wait is bounded.
#
# BENCH_CHAIN=1 also runs build/bench/chain_bench at the end (version
# chains read in-process, no iSCSI; ~4 minutes at the defaults).  It
# shares BENCH_IMAGE_MIB, reads BENCH_LAYERS (10) and BENCH_PCT (5), and
# takes BENCH_CHAIN_SECS (3) and BENCH_CHAIN_ROUNDS (3) as its own
# BENCH_SECS/BENCH_ROUNDS.  overlay_bench is built by `make bench` but not
# run here.
#
# Then bench/versions.sh (skip it with BENCH_VERSIONS=0): reads through
# pristined over iSCSI from clients on v2 (1 layer), v11 (10 layers), the
# same content in one layer, and v11 flattened (~4 minutes at the
# defaults: BENCH_VERSIONS_ROUNDS (5) runs of BENCH_VERSIONS_SECS (3) s
# each; it shares BENCH_IMAGE_MIB, BENCH_PORT, BENCH_PIN, BENCH_DIR,
# BENCH_KEEP).  BENCH_ONLY=versions (or `make bench-versions`) runs only
# that phase.
set -euo pipefail

cd "$(dirname "$0")/.."
if [ "${BENCH_ONLY:-}" = versions ]; then
	exec bash bench/versions.sh
fi
BUILD=${BUILD:-build}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECS:-5}
IMG_MIB=${BENCH_IMAGE_MIB:-1024}
BOOT=${BENCH_BOOT:-"16 64"}
PORT=${BENCH_PORT:-13260}
PORTAL=127.0.0.1:$PORT
BENCH=$BUILD/bench/iscsi_bench
RAW_T=iqn.2026-11.org.pristine:bench-raw
OVL_T=iqn.2026-11.org.pristine:golden
INI=iqn.2026-11.org.pristine.bench:client
NBLK4K=$((IMG_MIB * 256))

for b in "$BUILD/pristined" "$BUILD/pristinectl" "$BENCH" "$BUILD/bench/raw_target"; do
	[ -x "$b" ] || { echo "run.sh: $b missing; run 'make bench'" >&2; exit 1; }
done

# With 2 CPUs shared by client and server, where the scheduler happens to
# put the two threads swung 4 KiB QD32 reads between ~80k and ~170k IOPS
# from run to run.  Pinning the daemon to the last CPU and the load
# generator to the first makes runs comparable (BENCH_PIN=0: no pinning).
PIN_D=() PIN_C=()
if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	PIN_D=(taskset -c "$(( $(nproc) - 1 ))")
	PIN_C=(taskset -c 0)
fi

PARENT=${BENCH_DIR:-${TMPDIR:-/tmp}}
TMP=$(mktemp -d "$PARENT/pristine-bench.XXXXXX")
RES=$TMP/results          # lines: ROUND TARGET KEY RESULT-fields...
DPID=""

stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=""
}
cleanup() {
	stop_daemon
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "scratch kept in $TMP"
	else
		rm -rf "$TMP"
	fi
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
	DPID=$!
	wait_listen "$TMP/raw.log.cur"
	TARGET=$RAW_T
}

start_ovl() {
	rm -rf "$TMP/state"
	: >"$TMP/ovl.log.cur"
	"${PIN_D[@]}" "$BUILD/pristined" --image "$TMP/golden.img" --listen "$PORTAL" --state "$TMP/state" \
		--nop-interval 0 2>"$TMP/ovl.log.cur" &
	DPID=$!
	wait_listen "$TMP/ovl.log.cur"
	TARGET=$OVL_T
}

# bench ROUND WHO KEY iscsi_bench-args...: one measured run.  Dirty pages
# of the previous run are written back first, so they do not compete.
bench() {
	local round=$1 who=$2 key=$3 out
	shift 3
	sync
	out=$("${PIN_C[@]}" "$BENCH" -p "$PORTAL" -T "$TARGET" -L "$key" "$@" 2>&1) || {
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

# One round for one target (raw|overlay).
round() {
	local r=$1 who=$2 n before after
	# A: the untouched image.
	if [ "$who" = raw ]; then start_raw; else start_ovl; fi
	bench "$r" "$who" rr4k_qd1 -w randread -q 1 -t "$SECS"
	bench "$r" "$who" rr4k_qd32 -w randread -q 32 -t "$SECS"
	bench "$r" "$who" sr1m_qd8 -w seqread -q 8 -t "$SECS"
	for n in $BOOT; do
		bench "$r" "$who" "boot$n" -w boot -N "$n" -I "$INI-boot$n"
	done
	stop_daemon
	# B: 4 KiB random writes, fresh then overwrite, then reads of them.
	if [ "$who" = raw ]; then start_raw; else start_ovl; fi
	bench "$r" "$who" rw4k_qd32_fresh -w randwrite -q 32 -n "$NBLK4K" -t 120
	bench "$r" "$who" rw4k_qd32_over -w randwrite -q 32 -n "$NBLK4K" -t 120
	bench "$r" "$who" rr4k_qd32_written -w randread -q 32 -t "$SECS"
	stop_daemon
	# C: 1 MiB sequential writes, fresh then overwrite, then reads of them.
	if [ "$who" = raw ]; then start_raw; else start_ovl; fi
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

echo "== pristine benchmarks: overlay LUN vs raw-file LUN (same iSCSI/SCSI code)"
echo "   $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), kernel $(uname -r)"
echo "   scratch $TMP on $(df -T "$TMP" | awk 'NR == 2 { print $2 " (" $1 ")" }'), loopback $PORTAL"
echo "   pinning: ${PIN_D[*]:-none} daemon, ${PIN_C[*]:-none} iscsi_bench"
echo "   rounds $ROUNDS, time-bounded runs ${SECS} s, image ${IMG_MIB} MiB, boot storms: $BOOT sessions"

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
# and an identical copy for the raw target to scribble on.
t0=$(date +%s)
dd if=/dev/urandom of="$TMP/golden.img" bs=1M count="$IMG_MIB" status=none
cp "$TMP/golden.img" "$TMP/raw.img"
sync
echo "   images written in $(( $(date +%s) - t0 )) s (random data, not sparse)"
if command -v fincore >/dev/null; then
	echo "   page cache: warm, images resident: $(fincore -n -o RES "$TMP/golden.img" | tr -d ' ') (golden), $(fincore -n -o RES "$TMP/raw.img" | tr -d ' ') (raw);" \
	     "$(awk '/^MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) available"
else
	echo "   page cache: warm (images just written, RAM $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo))"
fi
echo

START=$(date +%s)
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	round "$r" raw
	round "$r" overlay
done
echo
echo "== medians over $ROUNDS rounds ($(( $(date +%s) - START )) s)"

# The table: per workload the median of its main metric (IOPS for 4 KiB,
# MiB/s otherwise), overlay/raw, and median p50/p99 latency.
awk -v rounds="$ROUNDS" '
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (n == 0) return ""
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	who = $2; delete f
	for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
	key = f["label"]
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	if ($3 == "EXTRA") {
		extra[key] = extra[key] " " (("seconds" in f) ? f["seconds"] : f["value"])
		if ("wall" in f) wall[key] = wall[key] " " f["wall"]
		next
	}
	if (f["workload"] == "boot") {
		metric[key] = "MiB/s"; val[who, key] = val[who, key] " " f["mibs"]
		p50[who, key] = p50[who, key] " " f["done_p50_s"]; p99[who, key] = p99[who, key] " " f["done_p99_s"]
		boot[key] = 1
	} else {
		if (f["bs"] == 4096) { metric[key] = "IOPS"; v = f["iops"] } else { metric[key] = "MiB/s"; v = f["mibs"] }
		val[who, key] = val[who, key] " " v
		p50[who, key] = p50[who, key] " " f["lat_p50_us"]; p99[who, key] = p99[who, key] " " f["lat_p99_us"]
	}
}
END {
	printf "%-20s %-6s %10s %10s %8s   %-23s %-23s\n", "workload", "unit", "raw", "overlay", "ovl/raw", \
		"raw p50/p99", "overlay p50/p99"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (key in extra || key ~ /^_/) continue
		r = median(val["raw", key]); o = median(val["overlay", key])
		u = boot[key] ? "s" : "us"
		printf "%-20s %-6s %10.1f %10.1f %8.3f   %-23s %-23s\n", key, metric[key], r, o, (r > 0 ? o / r : 0), \
			sprintf("%g/%g %s", median(p50["raw", key]), median(p99["raw", key]), u), \
			sprintf("%g/%g %s", median(p50["overlay", key]), median(p99["overlay", key]), u)
	}
	print ""
	print "(boot rows: p50/p99 are per-session completion times of the boot set, in seconds)"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (!(key in extra)) continue
		if (key == "rss_kib_per_gib")
			printf "pristined RSS growth per GiB written into one overlay: %s KiB (median; rounds:%s)\n", median(extra[key]), extra[key]
		else
			printf "%-8s: %.6f s in the API (median of %d), pristinectl wall median %.3f s\n", key, \
				median(extra[key]), rounds, median(wall[key])
	}
}' "$RES"

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
