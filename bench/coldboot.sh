#!/bin/bash
# coldboot.sh - issue 18's cold boot storms, part of `make bench`
# (bench/run.sh runs it after its own phases; BENCH_ONLY=cold or
# `make bench-cold` runs only this).  PRINTS NUMBERS: nothing passes or
# fails on a number; the issue's goals are printed as met / NOT met.
# Method and results: BENCHMARKS.md, "Issue 18: cold boot storms".
#
# The image: BENCH_COLD_IMAGE_MIB (4096) MiB of random data in a scratch
# directory on a real disk (BENCH_COLD_DIR, default /var/tmp: not tmpfs,
# so a dropped page cache means reads from the disk).  The boot set: 64
# MiB (BENCH_COLD_SET_MIB) in mixed 4 KiB .. 1 MiB extents SCATTERED over
# the whole image (iscsi_bench -w boot -S), one shuffled order, the same
# for every PC and every storm.
#
# Part 1, boot storms.  For each N in BENCH_COLD_PCS ("64 256") PCs, one
# pristined in quick mode on one state directory kept across its restarts
# (the boot set it learns is kept with the version):
#   warm        daemon running, one storm to warm the page cache (and to
#               learn: each PC's login begins a boot the daemon records),
#               then the measured storm
#   restart     the daemon restarted, caches NOT dropped, storm: what a
#               restart alone costs
#   cold_nopf   daemon stopped, `sync; echo 3 > /proc/sys/vm/drop_caches`,
#               started with --no-prefetch, storm
#   cold_pf     stopped, caches dropped, started (prefetch on), wait until
#               the current version's boot_set.prefetch is "done" (the
#               time and the resident share are printed), storm
#   cold_race   stopped, caches dropped, started, storm AT ONCE: the PCs
#               race the prefetch (Monday 08:00)
#   tgt_warm, tgt_cold
#               tgtd (bench/tgt.sh) on the same file: a warm-up storm then
#               the measured one; then stopped, caches dropped, started,
#               storm
# Then the cold rounds again with the disk MODELLED AS A SLOW ONE (unless
# BENCH_COLD_MODEL=0): a cgroup v1 blkio group throttling the reads of
# the daemon (and of tgtd) on the image's block device to
# BENCH_COLD_IOPS (400) reads/s and BENCH_COLD_BPS (200000000) bytes/s,
# a SATA-disk-like server.  It is a model, not a disk: labelled "model"
# wherever printed.  The group is removed at the end.
#
# Part 2, a live PC during the prefetch: one PC that booted "long ago"
# (logged in, one read, then idle BENCH_COLD_IDLE (12) s so that its boot
# - its boot timing, 5 s, and its boot recording, 10 s - has ended in the
# daemon's eyes: iscsi_bench -W) streams 64 KiB random reads at QD4 of
# the last GiB of the image (less when the image is small) (NOT in the boot set, cold) for
# BENCH_COLD_LIVE_SECS (10) s, while the prefetch of a big boot set
# (BENCH_COLD_BIG_MIB (1024) MiB, learned by one PC's boot over the first
# half of the image, its own state directory) runs, asked for through
# the admin API (POST /v1/images/golden/prefetch) 1 s into the PC's run;
# against the same without a prefetch.  With and without the blkio model.
#
# Printed: per case the aggregate MiB/s and the per-PC completion times
# p50/p99/max; the ratios cold_pf / warm, cold_pf / cold_nopf, p99/p50
# against the goals (>= 0.9x warm, >= 3x cold without prefetch, p99/p50
# <= 1.5); tgt's cold and warm side by side; the live PC's MiB/s both ways
# and their ratio (goal >= 0.9).
#
# Without a pristined that knows --no-prefetch (before issue 18's daemon
# side) the prefetch cases are left out and said so; tgt and cold/warm
# without prefetch still run.
#
# Then bench/coldboot_linux.sh (BENCH_COLD_LINUX=0 leaves it out): the
# Linux diskless client's boot time, warm, cold without and with the
# prefetch (see its header).
#
# Environment: BENCH_COLD_PCS ("64 256", each at most 256),
# BENCH_COLD_IMAGE_MIB (4096), BENCH_COLD_SET_MIB (64), BENCH_COLD_DIR
# (/var/tmp), BENCH_COLD_MODEL (1), BENCH_COLD_IOPS (400), BENCH_COLD_BPS
# (200000000), BENCH_COLD_LIVE (1: part 2), BENCH_COLD_BIG_MIB (1024),
# BENCH_COLD_LIVE_SECS (10), BENCH_COLD_IDLE (12), BENCH_COLD_WAIT (300:
# the longest wait for a prefetch to be done, or for a boot set to be
# learned); shared with bench/run.sh: BENCH_PORT (13260: pristined; tgtd on
# +1, its control port +2), BENCH_TGT=0 (tgt left out), BENCH_PIN (1),
# BENCH_KEEP=1 (keep the scratch directory), BUILD.  Needs root (drop
# caches, cgroups, tgtd).  Loopback only; every wait is bounded; every
# process is stopped by its PID.  About 9 minutes at the defaults on 2
# CPUs (writing the image ~20 s, each 256-PC storm ~10-30 s).
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
PCS_LIST=${BENCH_COLD_PCS:-"64 256"}
IMG_MIB=${BENCH_COLD_IMAGE_MIB:-4096}
SET_MIB=${BENCH_COLD_SET_MIB:-64}
USE_MODEL=${BENCH_COLD_MODEL:-1}
M_IOPS=${BENCH_COLD_IOPS:-400}
M_BPS=${BENCH_COLD_BPS:-200000000}
USE_LIVE=${BENCH_COLD_LIVE:-1}
BIG_MIB=${BENCH_COLD_BIG_MIB:-1024}
LIVE_SECS=${BENCH_COLD_LIVE_SECS:-10}
IDLE=${BENCH_COLD_IDLE:-12}
WAIT=${BENCH_COLD_WAIT:-300}
PORT=${BENCH_PORT:-13260}
PORTAL=127.0.0.1:$PORT
TGT_PORTAL=127.0.0.1:$((PORT + 1))
TGT_CTL=${BENCH_TGT_CONTROL:-$((PORT + 2))}
USE_TGT=${BENCH_TGT:-1}
BENCH=$BUILD/bench/iscsi_bench
OVL_T=iqn.2026-11.org.pristine:golden
TGT_T=iqn.2026-11.org.pristine:bench-tgt
INI=iqn.2026-11.org.pristine.bench:cold

for b in "$BUILD/pristined" "$BUILD/pristinectl" "$BENCH"; do
	[ -x "$b" ] || { echo "coldboot.sh: $b missing; run 'make bench-build'" >&2; exit 1; }
done
for v in IMG_MIB SET_MIB M_IOPS M_BPS BIG_MIB LIVE_SECS IDLE WAIT; do
	case ${!v} in
	'' | *[!0-9]* | 0) echo "coldboot.sh: $v must be a positive number" >&2; exit 1 ;;
	esac
done
for n in $PCS_LIST; do
	[ "$n" -ge 1 ] && [ "$n" -le 256 ] || { echo "coldboot.sh: BENCH_COLD_PCS sizes must be 1..256" >&2; exit 1; }
done
# Part 2's live PC reads the last LIVE_MIB (at most 1 GiB) of the image,
# after the 2 x BIG_MIB the big boot set is scattered over.
LIVE_MIB=$((IMG_MIB - 2 * BIG_MIB))
[ "$LIVE_MIB" -le 1024 ] || LIVE_MIB=1024
[ "$LIVE_MIB" -ge 64 ] || [ "$USE_LIVE" != 1 ] ||
	{ echo "coldboot.sh: part 2 needs BENCH_COLD_IMAGE_MIB >= 2 x BENCH_COLD_BIG_MIB + 64" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "coldboot.sh: needs root (drop_caches, blkio cgroup, tgtd)" >&2; exit 1; }
command -v jq >/dev/null && command -v curl >/dev/null ||
	{ echo "coldboot.sh: jq and curl are needed ('make deps')" >&2; exit 1; }
if [ "$USE_TGT" = 1 ]; then
	bench_need_tgt coldboot
	. bench/tgt.sh
fi
# Issue 18's daemon side: quick mode knows --no-prefetch.
HAVE_PF=0
"$BUILD/pristined" --help 2>&1 | grep -q -- '--no-prefetch' && HAVE_PF=1
CG_ROOT=/sys/fs/cgroup/blkio
if [ "$USE_MODEL" = 1 ] && [ ! -w "$CG_ROOT/cgroup.procs" ]; then
	echo "coldboot.sh: no cgroup v1 blkio hierarchy at $CG_ROOT: the slow-disk model is left out"
	USE_MODEL=0
fi

bench_pin_cpus

PARENT=${BENCH_COLD_DIR:-/var/tmp}
TMP=$(mktemp -d "$PARENT/pristine-coldboot.XXXXXX")
IMG=$TMP/golden.img
RES=$TMP/results          # lines: N CASE RESULT-fields... [extra=..]
DPID="" DKIND="" STATE="" CG=""
OUT=$BUILD/bench
mkdir -p "$OUT"

stop_daemon() {
	local kind=$DKIND
	bench_stop_target
	[ "$kind" != overlay ] || cat "$TMP/d.log.cur" >>"$TMP/d.log" 2>/dev/null || true
}
# The blkio group: every process still in it back to the root, then gone.
model_remove() { bench_blkio_remove; }
cleanup() {
	stop_daemon
	model_remove
	bench_scratch_done "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# model_make: the blkio group of the slow-disk model (CG).
model_make() { bench_blkio_make "$IMG" "$M_IOPS" "$M_BPS" pristine-coldboot; }

drop_caches() { bench_drop_caches; }

# start_ovl STATEDIR MODEL(0|1) [ARGS...]: pristined in quick mode on the
# image, its state kept; in the model's group from its first instruction
# when MODEL is 1.
start_ovl() {
	local st=$1 model=$2 pre=()
	shift 2
	STATE=$st
	[ "$model" = 0 ] || pre=(bash -c 'echo $$ >"$0"; exec "$@"' "$CG/cgroup.procs")
	: >"$TMP/d.log.cur"
	"${PIN_D[@]}" "${pre[@]}" "$BUILD/pristined" --image "$IMG" --listen "$PORTAL" --state "$st" \
		--nop-interval 0 "$@" 2>"$TMP/d.log.cur" &
	DPID=$! DKIND=overlay
	T_START=$(date +%s%N)
	for _ in $(seq 300); do
		grep -q "listening on" "$TMP/d.log.cur" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "coldboot.sh: pristined did not start:" >&2
	tail "$TMP/d.log.cur" >&2
	exit 1
}

start_tgt() {
	local model=$1
	tgt_start --image "$IMG" --portal "$TGT_PORTAL" --control "$TGT_CTL" --dir "$TMP" \
		--target "$TGT_T" ${DCPU:+--pin "$DCPU"} || { echo "coldboot.sh: tgt did not start" >&2; exit 1; }
	DPID=$TGT_PID DKIND=tgt
	if [ "$model" = 1 ]; then
		echo "$DPID" >"$CG/cgroup.procs"
	fi
}

# bootset FIELD: the current version's boot_set.FIELD ("" when none).
bootset() { bench_bootset "$BUILD/pristinectl" "$STATE" golden "$1"; }

# wait_learned MIN-BOOTS: until the current version's boot set holds at
# least that many boots (a boot settles 10 s after its last new chunk);
# bounded by WAIT.  Prints what it learned.
wait_learned() {
	local t0=$SECONDS b=""
	while [ $((SECONDS - t0)) -lt "$WAIT" ]; do
		b=$(bootset boots)
		[ -n "$b" ] && [ "$b" -ge "$1" ] && break
		sleep 1
	done
	printf '  learned: boot set %s MiB in %s chunks from %s boots (%d s waited)\n' \
		"$(awk -v b="$(bootset bytes)" 'BEGIN { printf "%.1f", b / 1048576 }')" \
		"$(bootset chunks)" "${b:-?}" $((SECONDS - t0))
}

# wait_prefetched: until the current version's prefetch is done (or ends
# otherwise), bounded by WAIT.  Sets PF_SECS (since the daemon started),
# PF_STATE, PF_RES (resident share of the boot set).
wait_prefetched() {
	local st="" t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$WAIT" ]; do
		st=$(bootset prefetch)
		case $st in done | failed | cancelled) break ;; esac
		sleep 0.05
	done
	PF_SECS=$(awk -v a="$T_START" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	PF_STATE=${st:-unknown}
	PF_RES=$(awk -v r="$(bootset resident_bytes)" -v b="$(bootset bytes)" \
		'BEGIN { if (b + 0 > 0) printf "%.2f", r / b; else print "-" }')
	PF_JSON_SECS=$(bootset prefetch_seconds)
}

# storm N CASE PORTAL TARGET LUN [EXTRA-NOTE]: one boot storm of N PCs
# reading the scattered boot set; its RESULT line into RES.  A storm that
# fails is a result (FAIL), the run goes on.
storm() {
	local n=$1 c=$2 portal=$3 target=$4 lun=$5 note=${6:-} out
	sync
	if out=$("${PIN_C[@]}" "$BENCH" -p "$portal" -T "$target" -l "$lun" -w boot -N "$n" -r "$SET_MIB" \
		-S "$IMG_MIB" -I "$INI" -L "$c" 2>&1); then
		echo "$n $c $(grep '^RESULT' <<<"$out")${note:+ $note}" >>"$RES"
		awk -v c="$c" -v n="$n" -v note="$note" '/^RESULT/ {
			for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) g[kv[1]] = kv[2]
			printf "  N=%-3d %-16s %8.1f MiB/s in %6.2f s; per PC p50/p99/max %.3f/%.3f/%.3f s%s\n", n, c,
				g["mibs"], g["secs"], g["done_p50_s"], g["done_p99_s"], g["done_max_s"], note == "" ? "" : "; " note
		}' <<<"$out"
	else
		printf '  N=%-3d %-16s FAILED: %s\n' "$n" "$c" "$(tail -c 300 <<<"$out" | tr '\n' ' ')"
		echo "$n $c FAIL" >>"$RES"
	fi
}

ovl_storm() { storm "$1" "$2" "$PORTAL" "$OVL_T" 0 "${3:-}"; }
tgt_storm() { storm "$1" "$2" "$TGT_PORTAL" "$TGT_T" 1 "${3:-}"; }

# cold_rounds N MODEL SUFFIX: the cold cases of pristined and tgt.
cold_rounds() {
	local n=$1 m=$2 sfx=$3
	stop_daemon
	drop_caches
	if [ "$HAVE_PF" = 1 ]; then
		start_ovl "$TMP/state" "$m" --no-prefetch
	else
		start_ovl "$TMP/state" "$m"
	fi
	ovl_storm "$n" "cold_nopf$sfx"
	if [ "$HAVE_PF" = 1 ]; then
		stop_daemon
		drop_caches
		start_ovl "$TMP/state" "$m"
		wait_prefetched
		ovl_storm "$n" "cold_pf$sfx" "prefetch=$PF_STATE pf_wait_s=$PF_SECS pf_json_s=${PF_JSON_SECS:--} resident=$PF_RES"
		stop_daemon
		drop_caches
		start_ovl "$TMP/state" "$m"
		ovl_storm "$n" "cold_race$sfx"
	fi
	stop_daemon
	if [ "$USE_TGT" = 1 ]; then
		drop_caches
		start_tgt "$m"
		tgt_storm "$n" "tgt_cold$sfx"
		stop_daemon
	fi
}

# trigger_prefetch: ask the daemon to prefetch golden's current version.
trigger_prefetch() {
	curl -s -m 10 --unix-socket "$STATE/pristined.sock" -X POST \
		"http://localhost/v1/images/golden/prefetch" >"$TMP/prefetch-post.json" 2>&1 || true
}

# live_pc MODEL(0|1) PREFETCH(0|1) SFX: part 2, one measured run.
live_pc() {
	local m=$1 pf=$2 sfx=$3 c out bpid t0
	c=live_$([ "$pf" = 1 ] && echo pf || echo nopf)$sfx
	stop_daemon
	# The learned state again: what the last run's live PC read (its
	# login began a boot) must not have joined the boot set.
	rm -rf "$TMP/state2"
	cp -a "$TMP/state2.learned" "$TMP/state2"
	start_ovl "$TMP/state2" "$m"
	# The start's own prefetch of the big set first: done, then cold again.
	wait_prefetched
	drop_caches
	"${PIN_C[@]}" "$BENCH" -p "$PORTAL" -T "$OVL_T" -w randread -b 65536 -q 4 -o $((IMG_MIB - LIVE_MIB)) -r "$LIVE_MIB" \
		-t "$LIVE_SECS" -W "$IDLE" -I "$INI-live" -L "$c" >"$TMP/live.out" 2>&1 &
	bpid=$!
	# The PC's measured run starts IDLE s from now; the prefetch 1 s into it.
	sleep $((IDLE + 1))
	t0=$(date +%s%N)
	if [ "$pf" = 1 ]; then
		T_START=$t0
		trigger_prefetch
	fi
	# The PC's run first: polling the daemon meanwhile (a pristinectl
	# every 50 ms) would take CPU from the PC that the case without a
	# prefetch does not pay - it did: 0.54-0.59x with the poll inside.
	wait "$bpid" || { printf '  %-16s FAILED: %s\n' "$c" "$(tail -c 300 "$TMP/live.out" | tr '\n' ' ')"; echo "0 $c FAIL" >>"$RES"; return 0; }
	out=$(grep '^RESULT' "$TMP/live.out")
	[ "$pf" = 1 ] && wait_prefetched
	if [ "$pf" = 1 ]; then
		echo "0 $c $out prefetch=$PF_STATE pf_s=$PF_SECS resident=$PF_RES" >>"$RES"
		printf '  %-16s live PC %s MiB/s (64 KiB random QD4, %s s); prefetch %s in %s s (resident %s of the set)\n' \
			"$c" "$(sed 's/.* mibs=\([^ ]*\).*/\1/' <<<"$out")" "$LIVE_SECS" "$PF_STATE" "$PF_SECS" "$PF_RES"
	else
		echo "0 $c $out" >>"$RES"
		printf '  %-16s live PC %s MiB/s (64 KiB random QD4, %s s); no prefetch\n' \
			"$c" "$(sed 's/.* mibs=\([^ ]*\).*/\1/' <<<"$out")" "$LIVE_SECS"
	fi
}

echo "== issue 18: cold boot storms (bench/coldboot.sh)"
echo "   $(nproc) CPUs, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); pinning: ${PIN_D[*]:-none} daemon, ${PIN_C[*]:-none} iscsi_bench"
echo "   image $IMG_MIB MiB on $(df -T "$TMP" | awk 'NR == 2 { print $2 " (" $1 ")" }'); boot set $SET_MIB MiB" \
     "in 4 KiB..1 MiB extents scattered over all of it (iscsi_bench -S), QD4 per PC; PCs: $PCS_LIST"
echo "   pristined quick mode, one state directory across restarts; prefetch: $([ "$HAVE_PF" = 1 ] && echo "yes" ||
     echo "NOT in this pristined (no --no-prefetch): prefetch cases left out")"
echo "   cold = daemon restarted after 'sync; echo 3 > /proc/sys/vm/drop_caches'"
t0=$(date +%s)
dd if=/dev/urandom of="$IMG" bs=4M count=$((IMG_MIB / 4)) status=none
sync
echo "   image written in $(( $(date +%s) - t0 )) s (random data)"
if [ "$USE_MODEL" = 1 ]; then
	model_make
fi
START=$(date +%s)

echo "-- part 1: boot storms"
for n in $PCS_LIST; do
	start_ovl "$TMP/state" 0
	ovl_storm "$n" _warmup
	ovl_storm "$n" warm
	if [ "$HAVE_PF" = 1 ]; then
		wait_learned 1
	fi
	# What a restart alone costs (page cache left warm).
	stop_daemon
	start_ovl "$TMP/state" 0
	ovl_storm "$n" restart
	stop_daemon
	if [ "$USE_TGT" = 1 ]; then
		start_tgt 0
		tgt_storm "$n" _tgt_warmup
		tgt_storm "$n" tgt_warm
		stop_daemon
	fi
	cold_rounds "$n" 0 ""
	if [ "$USE_MODEL" = 1 ]; then
		cold_rounds "$n" 1 _model
	fi
done

if [ "$USE_LIVE" = 1 ] && [ "$HAVE_PF" = 1 ]; then
	echo "-- part 2: a live PC during the prefetch of a $BIG_MIB MiB boot set"
	start_ovl "$TMP/state2" 0
	"${PIN_C[@]}" "$BENCH" -p "$PORTAL" -T "$OVL_T" -w boot -N 1 -r "$BIG_MIB" -S $((2 * BIG_MIB)) \
		-I "$INI-big" -L _learn_big >/dev/null
	wait_learned 1
	stop_daemon
	cp -a "$TMP/state2" "$TMP/state2.learned"
	for m in 0 $([ "$USE_MODEL" = 1 ] && echo 1); do
		sfx=$([ "$m" = 1 ] && echo _model || true)
		live_pc "$m" 0 "$sfx"
		live_pc "$m" 1 "$sfx"
	done
	stop_daemon
elif [ "$USE_LIVE" = 1 ]; then
	echo "-- part 2 (live PC during the prefetch) left out: this pristined has no prefetch"
fi
cp "$RES" "$OUT/coldboot-results.txt"

echo
echo "== cold boot storms: summary ($(( $(date +%s) - START )) s; one run per case; raw lines: $OUT/coldboot-results.txt)"
awk -v model="$USE_MODEL" -v iops="$M_IOPS" -v bps="$M_BPS" '
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
function goal(text, v, limit, ge, detail,    ok) {
	if (v == "-" || v == "") { printf "  %-58s %-8s %s\n", text, "n/a", detail; return }
	ok = ge ? (v + 0 >= limit) : (v + 0 <= limit)
	printf "  %-58s %-8s %s\n", text, ok ? "met" : "NOT met", detail
}
{
	n = $1; c = $2
	if ($3 == "FAIL") { fail[n, c] = 1; if (n > 0) seen[n] = 1; next }
	delete g
	for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2) g[kv[1]] = kv[2]
	mibs[n, c] = g["mibs"]; p50[n, c] = g["done_p50_s"]; p99[n, c] = g["done_p99_s"]; mx[n, c] = g["done_max_s"]
	if (n > 0) seen[n] = 1
}
END {
	split("warm restart cold_nopf cold_pf cold_race tgt_warm tgt_cold", cs, " ")
	for (n in seen) ns[++k] = n + 0
	for (i = 2; i <= k; i++) for (j = i; j > 1 && ns[j - 1] > ns[j]; j--) { t = ns[j]; ns[j] = ns[j - 1]; ns[j - 1] = t }
	printf "%-5s %-20s %10s %26s %8s\n", "PCs", "case", "MiB/s", "per PC p50/p99/max (s)", "p99/p50"
	for (a = 1; a <= k; a++) {
		n = ns[a]
		for (sfx = 0; sfx <= model; sfx++)
			for (i = 1; i <= 7; i++) {
				c = cs[i] (sfx ? "_model" : "")
				if (sfx && c ~ /warm|restart/) continue
				if (fail[n, c]) { printf "%-5d %-20s FAILED\n", n, c; continue }
				if (mibs[n, c] == "") continue
				printf "%-5d %-20s %10.1f %26s %8s\n", n, c, mibs[n, c],
					sprintf("%.3f/%.3f/%.3f", p50[n, c], p99[n, c], mx[n, c]), ratio(p99[n, c], p50[n, c])
			}
	}
	if (model) printf "(_model: reads of the daemon (and tgtd) throttled by a blkio cgroup to %d/s and %d B/s: a MODEL of a slow disk)\n", iops, bps
	print ""
	print "goals of issue 18 (per-PC times are from the common start of the storm):"
	for (a = 1; a <= k; a++) {
		n = ns[a]
		for (sfx = 0; sfx <= model; sfx++) {
			s = sfx ? "_model" : ""
			lab = sprintf("N=%d%s", n, sfx ? " (model)" : "")
			w = mibs[n, "warm"]; p = mibs[n, "cold_pf" s]; o = mibs[n, "cold_nopf" s]; r = mibs[n, "cold_race" s]
			tw = mibs[n, "tgt_warm"]; tc = mibs[n, "tgt_cold" s]
			if (tw != "" || tc != "")
				printf "  %-58s %-8s %s\n", lab ": tgt cold / warm", "", sprintf("%s / %s MiB/s = %sx; pristined cold+prefetch / tgt cold %sx", tc, tw, ratio(tc, tw), ratio(p, tc))
			if (p == "" && r == "") {
				printf "  %-58s %-8s %s\n", lab ": cold+prefetch", "n/a", sprintf("not measured (cold without %s, warm %s MiB/s)", o, w)
				continue
			}
			goal(lab ": cold+prefetch >= 0.9x warm (aggregate)", ratio(p, w), 0.9, 1, sprintf("%s vs %s MiB/s = %sx", p, w, ratio(p, w)))
			goal(lab ": cold+prefetch >= 3x cold without", ratio(p, o), 3, 1, sprintf("%s vs %s MiB/s = %sx", p, o, ratio(p, o)))
			goal(lab ": cold+prefetch per-PC p99/p50 <= 1.5", ratio(p99[n, "cold_pf" s], p50[n, "cold_pf" s]), 1.5, 0,
				sprintf("%s/%s s", p99[n, "cold_pf" s], p50[n, "cold_pf" s]))
			printf "  %-58s %-8s %s\n", lab ": (also) storm at once, racing the prefetch", "",
				sprintf("%s MiB/s = %sx warm, %sx cold without; p99/p50 %s", r, ratio(r, w), ratio(r, o), ratio(p99[n, "cold_race" s], p50[n, "cold_race" s]))
		}
	}
	for (sfx = 0; sfx <= model; sfx++) {
		s = sfx ? "_model" : ""
		a = mibs[0, "live_pf" s]; b = mibs[0, "live_nopf" s]
		if (a == "" && b == "") continue
		goal(sprintf("live PC during the prefetch >= 0.9x without%s", sfx ? " (model)" : ""), ratio(a, b), 0.9, 1,
			sprintf("%s vs %s MiB/s = %sx", a, b, ratio(a, b)))
	}
}' "$RES"

# The Linux diskless client, cold and warm (bench/coldboot_linux.sh).
if [ "${BENCH_COLD_LINUX:-1}" = 1 ]; then
	echo
	bash bench/coldboot_linux.sh
fi
