#!/bin/bash
# versions.sh - the version-chain phase of `make bench` (also alone: `make
# bench-versions`): reads THROUGH pristined over iSCSI from clients on
# versions of different depth, side by side, PRINTS NUMBERS (nothing passes
# or fails on a number).  Results and method: BENCHMARKS.md, "Versions
# through iSCSI".
#
# Setup, with the real admin workflow on one daemon (quick mode, a fresh
# state directory, loopback only):
#   image "golden" (the source, v1): ten times `pristinectl image edit
#     golden --client MAINT`, the maintenance initiator MAINT writes a
#     random BENCH_PCT% (5) of the 4 KiB blocks (iscsi_bench randwrite, a
#     permutation prefix of seed i, so no block twice in one layer, QD32,
#     -P: the data depend only on the block and the seed), `pristinectl
#     image commit golden -m ...`.  Client "on-v2" first logs in after the
#     first commit (it keeps v2: 1 layer), client "on-v11" after the tenth
#     (v11: 10 layers).
#   image "union" (same source file): ONE draft into which MAINT makes the
#     same ten runs, committed as its v2: the content of golden's v11 at
#     depth 1 (one layer holding every block the ten layers hold).  Client
#     "on-union".
#   image "flat" (same source file): the same ten drafts and commits as
#     golden, then `pristinectl image flatten flat`: its v11 reads from one
#     file (flat-v11.raw).  Client "on-flat".
# Each client then reads its whole disk once (page cache warm for every
# set; fincore prints what is resident), and in BENCH_ROUNDS rounds, for
# each workload (4 KiB random read QD32, 4 KiB random read QD1, 1 MiB
# sequential read QD8, BENCH_SECS each), the four clients run one after the
# other, the order rotated every round.  Per run it also reads the daemon's
# CPU time (utime+stime, /proc/PID/stat) and read-type syscalls (syscr,
# /proc/PID/io: socket reads and preads) and prints them per command.
# Table: medians; ratios v11/v2 and v11/union (the 95% target), v11/flat.
# Other work on the machine (tests with QEMU...) shows as "others" per
# run: user CPU time used by neither the daemon nor iscsi_bench.  Runs
# where that exceeds BENCH_QUIET_PCT of a CPU are marked "!" and left out of
# the medians (a cell with no quiet run falls back to all its runs, and
# the table says so).
#
# Environment: BENCH_VERSIONS_ROUNDS (5), BENCH_VERSIONS_SECS (3: length
# of a run), BENCH_QUIET_PCT (20), BENCH_IMAGE_MIB (1024),
# BENCH_LAYERS (10), BENCH_PCT (5), BENCH_PORT (13260), BENCH_DIR (scratch
# parent), BENCH_KEEP=1, BENCH_PIN (1: daemon on the last CPU, iscsi_bench
# on CPU 0, as in run.sh), BENCH_VERIFY=1 also exports golden v11 and union
# v2 and compares them with flat-v11.raw (3 x the image size written).
# Every wait is bounded.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
ROUNDS=${BENCH_VERSIONS_ROUNDS:-5}
SECS=${BENCH_VERSIONS_SECS:-3}
QUIET_PCT=${BENCH_QUIET_PCT:-20}
IMG_MIB=${BENCH_IMAGE_MIB:-1024}
LAYERS=${BENCH_LAYERS:-10}
PCT=${BENCH_PCT:-5}
PORT=${BENCH_PORT:-13260}
PORTAL=127.0.0.1:$PORT
BENCH=$BUILD/bench/iscsi_bench
CTL=$BUILD/pristinectl
IQN=iqn.2026-11.org.pristine
INI=iqn.2026-11.org.pristine.bench
MAINT=$INI:maint
NBLK4K=$((IMG_MIB * 256))
NWRITE=$((NBLK4K * PCT / 100))
TOP=$((LAYERS + 1))
# Columns: name, image, client.
COLS=(v2 "v$TOP" union flat)
declare -A IMG=([v2]=golden ["v$TOP"]=golden [union]=union [flat]=flat)

for b in "$BUILD/pristined" "$CTL" "$BENCH"; do
	[ -x "$b" ] || { echo "versions.sh: $b missing; run 'make bench-build'" >&2; exit 1; }
done
[ "$LAYERS" -ge 1 ] && [ "$NWRITE" -ge 1 ] || { echo "versions.sh: BENCH_LAYERS and BENCH_PCT too small" >&2; exit 1; }

bench_pin_cpus

PARENT=${BENCH_DIR:-${TMPDIR:-/tmp}}
TMP=$(mktemp -d "$PARENT/pristine-versions.XXXXXX")
STATE=$TMP/state
RES=$TMP/results          # lines: ROUND COLUMN RESULT-fields... cpu_us=.. syscr=..
DPID=""

stop_daemon() {
	[ -n "$DPID" ] || return 0
	bench_kill "$DPID"
	DPID=""
}
cleanup() {
	local rc=$?
	stop_daemon
	if [ "$rc" != 0 ] && [ -f "$TMP/daemon.log" ]; then
		cp "$TMP/daemon.log" "$TMP.daemon.log"
		echo "versions.sh: failed; the daemon's log is in $TMP.daemon.log" >&2
	fi
	bench_scratch_done "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$CTL" --state "$STATE" "$@"; }

# After a failed run: is the daemon alive, and what did it log last.
daemon_state() {
	if kill -0 "$DPID" 2>/dev/null; then echo "versions.sh: pristined $DPID still runs; its log ends:" >&2
	else echo "versions.sh: pristined $DPID is gone; its log ends:" >&2; fi
	tail -n 15 "$TMP/daemon.log" >&2
}

# The daemon's CPU time in clock ticks (all threads, live and ended) and
# its read-type syscalls so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
syscr() { awk '/^syscr/ { print $2 }' "/proc/$DPID/io"; }
HZ=$(getconf CLK_TCK)
# User-space CPU time of the whole machine (ticks: user + nice), and of this
# shell's children (iscsi_bench and the small tools; `times`, seconds):
# what neither they nor the daemon used during a run was somebody else's
# (other tests, QEMU...).  System time is left out: the kernel threads
# that carry the loopback traffic (ksoftirqd) would count as "others".
user_ticks() { awk '/^cpu / { print $2 + $3 }' /proc/stat; }
dmn_user() { awk '{ print $14 }' "/proc/$DPID/stat"; }
kids_secs() { times | awk 'NR == 2 { split($1, a, "m"); print a[1] * 60 + a[2] }'; }

# io CLIENT-INI TARGET-IMAGE iscsi_bench-args...: a run that is not
# measured (writes of the maintenance client, logins, warm-up reads).
io() {
	local ini=$1 img=$2 out
	shift 2
	out=$("${PIN_C[@]}" "$BENCH" -p "$PORTAL" -T "$IQN:$img" -I "$ini" "$@" 2>&1) || {
		echo "versions.sh: iscsi_bench failed ($ini on $img): $out" >&2
		daemon_state
		exit 1
	}
	grep -v '^RESULT' <<<"$out" || true
}

# bench ROUND COLUMN KEY iscsi_bench-args...: one measured run.
bench() {
	local round=$1 col=$2 key=$3 out c0 c1 r0 r1 b0 b1 d0 d1 k0 k1 t0 t1 ios res extra
	shift 3
	sync
	c0=$(cpu_ticks) r0=$(syscr) b0=$(user_ticks) d0=$(dmn_user) k0=$(kids_secs) t0=$(date +%s.%N)
	out=$("${PIN_C[@]}" "$BENCH" -p "$PORTAL" -T "$IQN:${IMG[$col]}" -I "$INI:on-$col" -L "$key" "$@" 2>&1) || {
		echo "versions.sh: iscsi_bench failed ($col $key): $out" >&2
		daemon_state
		exit 1
	}
	c1=$(cpu_ticks) r1=$(syscr) b1=$(user_ticks) d1=$(dmn_user) t1=$(date +%s.%N) k1=$(kids_secs)
	res=$(grep '^RESULT' <<<"$out")
	ios=$(sed 's/.* ios=\([0-9]*\).*/\1/' <<<"$res")
	extra=$(awk -v c="$((c1 - c0))" -v r="$((r1 - r0))" -v b="$((b1 - b0 - (d1 - d0)))" -v k="$k0 $k1" -v t="$t0 $t1" \
		-v n="$ios" -v hz="$HZ" 'BEGIN {
		split(k, kk, " "); split(t, tt, " "); other = b / hz - (kk[2] - kk[1])
		printf "cpu_us=%.2f syscr=%.3f other_pct=%.0f", c * 1e6 / hz / n, r / n, (other > 0 ? 100 * other / (tt[2] - tt[1]) : 0) }')
	echo "$round $col $res $extra" >>"$RES"
	awk -v col="$col" '{
		for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
		printf "  %-6s %-10s %8.0f IOPS %7.1f MiB/s  lat p50 %6.0f p99 %6.0f us | daemon %6.1f us CPU, %6.2f read syscalls per command | others %3d%% CPU (user)\n",
			col, f["label"], f["iops"], f["mibs"], f["lat_p50_us"], f["lat_p99_us"], f["cpu_us"], f["syscr"], f["other_pct"] }' <<<"$res $extra"
}

# layers IMAGE N FIRST-SEED: N drafts, each one maintenance run, each
# committed; calls after_commit IMAGE VERSION after every commit.
layers() {
	local img=$1 n=$2 i
	for i in $(seq "$n"); do
		ctl image edit "$img" --client "$MAINT" >/dev/null
		io "$MAINT" "$img" -w randwrite -q 32 -n "$NWRITE" -s "$i" -P -t 120 >/dev/null
		ctl image commit "$img" -m "bench layer $i: $PCT% of the 4 KiB blocks, seed $i" >/dev/null
		after_commit "$img" $((i + 1))
	done
}

# The first login of a client puts its overlay on the current version.
login() { io "$INI:on-$1" "${IMG[$1]}" -w randread -q 1 -n 1 -r 1 >/dev/null; }

after_commit() {
	[ "$1" = golden ] || return 0
	[ "$2" = 2 ] && login v2
	[ "$2" = "$TOP" ] && login "v$TOP"
	return 0
}

echo "== pristine benchmarks: version chains through pristined over iSCSI"
echo "   $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   scratch $TMP on $(df -T "$TMP" | awk 'NR == 2 { print $2 " (" $1 ")" }'), loopback $PORTAL"
echo "   pinning: ${PIN_D[*]:-none} daemon, ${PIN_C[*]:-none} iscsi_bench"
echo "   rounds $ROUNDS, runs ${SECS} s, image ${IMG_MIB} MiB, $LAYERS layers of $PCT% ($NWRITE) random 4 KiB blocks each"

T0=$(date +%s)
dd if=/dev/urandom of="$TMP/golden.img" bs=1M count="$IMG_MIB" status=none
sync
"${PIN_D[@]}" "$BUILD/pristined" --image "$TMP/golden.img" --listen "$PORTAL" --state "$STATE" \
	--nop-interval 0 2>"$TMP/daemon.log" &
DPID=$!
for _ in $(seq 100); do
	grep -q "listening on" "$TMP/daemon.log" 2>/dev/null && break
	kill -0 "$DPID" 2>/dev/null || { echo "versions.sh: daemon died:" >&2; tail "$TMP/daemon.log" >&2; exit 1; }
	sleep 0.1
done
grep -q "listening on" "$TMP/daemon.log" || { echo "versions.sh: daemon did not start" >&2; exit 1; }
ctl image add union "$TMP/golden.img" >/dev/null
ctl image add flat "$TMP/golden.img" >/dev/null

t=$(date +%s.%N)
layers golden "$LAYERS"
echo "   golden: $LAYERS drafts written and committed in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s;" \
     "on-v2 started on v2, on-v$TOP on v$TOP"
ctl image edit union --client "$MAINT" >/dev/null
for i in $(seq "$LAYERS"); do
	io "$MAINT" union -w randwrite -q 32 -n "$NWRITE" -s "$i" -P -t 120 >/dev/null
done
ctl image commit union -m "bench: the union of the $LAYERS layers in one" >/dev/null
login union
layers flat "$LAYERS"
t=$(date +%s.%N)
timeout 300 "$CTL" --state "$STATE" image flatten flat >/dev/null
echo "   flat: $LAYERS drafts, then v$TOP flattened in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
login flat
ctl image versions golden | sed 's/^/   | /'

if [ "${BENCH_VERIFY:-0}" = 1 ]; then
	ctl image export golden "$TOP" "$TMP/golden-v$TOP.raw" >/dev/null
	ctl image export union 2 "$TMP/union-v2.raw" >/dev/null
	if cmp -s "$TMP/golden-v$TOP.raw" "$TMP/union-v2.raw" && cmp -s "$TMP/golden-v$TOP.raw" "$STATE/images/flat/flat-v$TOP.raw"; then
		echo "   verify: golden v$TOP, union v2 and flat v$TOP (flat-v$TOP.raw) are identical"
	else
		echo "   verify: CONTENT DIFFERS between golden v$TOP, union v2, flat v$TOP" >&2
		exit 1
	fi
	rm -f "$TMP/golden-v$TOP.raw" "$TMP/union-v2.raw"
fi

# Warm: every client reads its whole disk once, so every set is in the page
# cache before the first measured run.
for c in "${COLS[@]}"; do
	io "$INI:on-$c" "${IMG[$c]}" -w seqread -q 8 -n "$IMG_MIB" -t 120 >/dev/null
done
ctl client list | sed 's/^/   | /'
res() { fincore -b -n -o RES "$@" 2>/dev/null | awk '{ s += $1 } END { printf "%.0f MiB", s / 1048576 }'; }
if command -v fincore >/dev/null; then
	echo "   page cache: WARM (each client read its whole disk once; nothing dropped); resident: source $(res "$TMP/golden.img")," \
	     "golden layers $(res "$STATE"/images/golden/layers/*/data), union layer $(res "$STATE"/images/union/layers/*/data)," \
	     "flat-v$TOP.raw $(res "$STATE/images/flat/flat-v$TOP.raw"); $(awk '/^MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) available"
else
	echo "   page cache: WARM (each client read its whole disk once; nothing dropped)"
fi
echo "   setup $(( $(date +%s) - T0 )) s"
echo

START=$(date +%s)
ncol=${#COLS[@]}
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	for w in rr4k_qd32 rr4k_qd1 sr1m_qd8; do
		for k in $(seq 0 $((ncol - 1))); do
			c=${COLS[$(( (k + r - 1) % ncol ))]}
			case $w in
			rr4k_qd32) bench "$r" "$c" "$w" -w randread -q 32 -t "$SECS" ;;
			rr4k_qd1) bench "$r" "$c" "$w" -w randread -q 1 -t "$SECS" ;;
			sr1m_qd8) bench "$r" "$c" "$w" -w seqread -q 8 -t "$SECS" ;;
			esac
		done
	done
done
echo
echo "== versions through iSCSI: medians over $ROUNDS rounds ($(( $(date +%s) - START )) s), page cache warm"

awk -v top="v$TOP" -v rounds="$ROUNDS" -v qp="$QUIET_PCT" '
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (n == 0) return 0
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	col = $2; delete f
	for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
	key = f["label"]
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	if (f["bs"] == 4096) { unit[key] = "IOPS"; v = f["iops"] } else { unit[key] = "MiB/s"; v = f["mibs"] }
	q = f["other_pct"] + 0 <= qp
	all[col, key] = all[col, key] " " int(v + 0.5) (q ? "" : "!")
	valall[col, key] = valall[col, key] " " v
	if (q) { val[col, key] = val[col, key] " " v; nq[col, key]++ }
	p50[col, key] = p50[col, key] " " f["lat_p50_us"]
	cpu[col, key] = cpu[col, key] " " f["cpu_us"]; sc[col, key] = sc[col, key] " " f["syscr"]
	runs++; if (!q) { busy++; maxo = f["other_pct"] + 0 > maxo ? f["other_pct"] + 0 : maxo }
}
END {
	nc = split("v2 " top " union flat", cols, " ")
	printf "%-10s %-6s %9s %9s %9s %9s  %9s %9s %9s\n", "workload", "unit", "v2", top, "union", (top "flat"), \
		(top "/v2"), (top "/union"), (top "/flat")
	for (k = 1; k <= nk; k++) {
		key = order[k]
		qs = ""
		for (c = 1; c <= nc; c++) {
			if (nq[cols[c], key]) m[c] = median(val[cols[c], key])
			else { m[c] = median(valall[cols[c], key]); nonq = 1 }
			qs = qs sprintf(" %9s", (nq[cols[c], key] + 0) "/" rounds)
		}
		printf "%-10s %-6s %9.1f %9.1f %9.1f %9.1f  %9.3f %9.3f %9.3f\n", key, unit[key], m[1], m[2], m[3], m[4], \
			(m[1] > 0 ? m[2] / m[1] : 0), (m[3] > 0 ? m[2] / m[3] : 0), (m[4] > 0 ? m[2] / m[4] : 0)
		printf "%-10s %-6s%s\n", "", "quiet", qs
	}
	printf "(medians of the quiet runs: others used at most %d%% of a CPU; the \"quiet\" line counts them%s)\n", qp, \
		nonq ? "; A CELL WITHOUT ANY: median of all its runs" : ""

	print ""
	print "medians per command: latency p50 (us), the daemon CPU time (us), the daemon read syscalls"
	printf "%-10s %-10s %9s %9s %9s %9s\n", "workload", "", "v2", top, "union", (top "flat")
	for (k = 1; k <= nk; k++) {
		key = order[k]
		printf "%-10s %-10s", key, "p50 us"
		for (c = 1; c <= nc; c++) printf " %9.1f", median(p50[cols[c], key])
		printf "\n%-10s %-10s", "", "CPU us"
		for (c = 1; c <= nc; c++) printf " %9.1f", median(cpu[cols[c], key])
		printf "\n%-10s %-10s", "", "reads"
		for (c = 1; c <= nc; c++) printf " %9.2f", median(sc[cols[c], key])
		printf "\n"
	}
	print ""
	if (busy)
		printf "NOT QUIET: in %d of %d runs other processes used more than %d%% of a CPU (up to %d%%), marked ! below\n", busy, runs, qp, maxo
	else
		printf "quiet: in every run other processes used at most %d%% of a CPU\n", qp
	print "every round (v2 / " top " / union / flat):"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		printf "%-10s", key
		for (c = 1; c <= nc; c++) printf "  %s:%s", cols[c], all[cols[c], key]
		printf "\n"
	}
}' "$RES"
