#!/bin/bash
# rbd.sh - the Ceph part of `make bench` (also `make bench-rbd`): issue 14's
# goals measured side by side in one run, on one throwaway single-node
# cluster (tests/lib/ceph.sh, a bluestore OSD on a 4 GiB sparse file in the
# scratch directory: memstore's 1 GiB does not hold the golden, tgt's clones
# and a PC holding 1 GiB; 2 GiB filled up - bluestore aborted with ENOSPC -
# when rw4k's clone, still there during the reset phase, held 575 MiB on a
# quiet box), three targets:
#   prbd    pristined -c CONF serving [image golden] rbd = rbd/golden@v1 and
#           [image big] rbd = rbd/big@v1 (a sparse BENCH_RBD_RESET_MIB
#           image for the reset); overlays wherever this daemon puts them
#           (BENCH_RBD_SERVER_CONF: more lines for its [server] section,
#           BENCH_RBD_IMAGE_CONF: for both [image] sections)
#   tgtrbd  tgtd (bench/tgt.sh) with tgt's rbd backing store (Debian package
#           tgt-rbd, bs_rbd: librbd called synchronously by tgt's worker
#           threads), LUN 1 = a fresh `rbd clone` of golden@v1 for every
#           phase, so that its writes land in a clone as an overlay would
#   plocal  pristined in quick mode on a local file holding the same bytes
# Every phase on a fresh start (a fresh state directory = fresh overlays):
#   boot64   a boot storm: BENCH_RBD_STORM (64) sessions, each its own
#            initiator, read the same 64 MiB boot set (iscsi_bench -w boot);
#            the OSD's own counter of bytes it returned to reads
#            (osd.op_r_out_bytes from `ceph --admin-daemon osd.0.asok perf
#            dump`, before and after) against the boot set's size
#   rr4k     4 KiB random reads QD32 over the untouched golden, BENCH_SECS
#   rw4k     4 KiB random writes QD32 into a fresh overlay (tgt: the fresh
#            clone), BENCH_SECS or every block once, whichever comes first
#   reset    (prbd only) a PC writes BENCH_RBD_RESET_MIB (1024) MiB into
#            `big` (1 MiB sequential writes QD8), then `pristinectl client
#            reset --force` is timed: the API's own seconds and pristinectl's
#            wall time (the goal is judged on the wall time: what the admin
#            waits for)
# then prints a table (medians over BENCH_RBD_ROUNDS rounds, default 1, the
# order of the targets rotated every round) and the goals of issue 14 as
# met / NOT met with their numbers.  PRINTS NUMBERS: nothing fails on a
# number.  Method and results: BENCHMARKS.md, "On Ceph RBD".
#
# Environment: BENCH_SECS (5), BENCH_RBD_ROUNDS (1), BENCH_RBD_IMAGE_MIB
# (256: the golden, random data), BENCH_RBD_STORM (64), BENCH_RBD_RESET_MIB
# (1024), BENCH_RBD_PORT (13360: pristined; tgtd's portal +1, its control
# port +2), BENCH_PIN (1: targets on CPU 1, iscsi_bench on CPU 0; Ceph's
# daemons are not pinned), BENCH_KEEP=1 keeps the scratch directory.
# Without Ceph's packages (ceph-mon, ceph-osd, ceph-common) or tgt-rbd, or
# not as root (tgtd), it prints why and exits 0.  Every wait is bounded.
set -euo pipefail

cd "$(dirname "$0")/.."
for t in ceph-mon ceph-osd ceph rbd rados tgtd tgtadm; do
	command -v "$t" >/dev/null || { echo "rbd.sh: skipped: $t is not installed (make deps; bench/deps.sh)"; exit 0; }
done
[ -f /usr/lib/tgt/backing-store/bs_rbd.so ] ||
	{ echo "rbd.sh: skipped: tgt's rbd backing store is not installed (Debian package tgt-rbd; bench/deps.sh)"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "rbd.sh: skipped: tgtd needs root"; exit 0; }

. bench/lib.sh
bench_init rbd
. bench/tgt.sh
[ -x "$BUILD/pristinectl" ] || { echo "rbd.sh: $BUILD/pristinectl is not built (make bench-build)" >&2; exit 1; }

# What tests/lib/ceph.sh expects of tests/lib/common.sh.
# (no errexit in the exit trap: ceph_stop's last wait fails on purpose)
fail() { echo "rbd.sh: $*" >&2; set +e; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# ceph_start's EXIT trap calls this after stopping the cluster.
cleanup_common() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		[ -z "$pid" ] || { kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; } || true
		bench_cleanup_more
		echo "scratch kept in $dir"
	else
		bench_cleanup
	fi
}
bench_cleanup_more() {
	[ -z "$TGT_PID" ] || tgt_stop --control "$TGT_CTL" --dir "$dir"
}
. tests/lib/ceph.sh
trap 'exit 130' INT TERM

SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_RBD_ROUNDS:-1}
IMG_MIB=${BENCH_RBD_IMAGE_MIB:-256}
STORM=${BENCH_RBD_STORM:-64}
RESET_MIB=${BENCH_RBD_RESET_MIB:-1024}
PORT=${BENCH_RBD_PORT:-13360}
TGT_PORTAL=127.0.0.1:$((PORT + 1))
TGT_CTL=$((PORT + 2))
INI=iqn.2026-11.org.pristine.bench:rbd
P_T=iqn.2026-11.org.pristine:golden
BIG_T=iqn.2026-11.org.pristine:big
TGT_T=iqn.2026-11.org.pristine:bench-tgt-rbd
RES=$dir/results        # ROUND WHO RESULT|EXTRA|FAIL label=.. key=value...
NBLK=$((IMG_MIB * 256))
[ "$STORM" -ge 1 ] && [ "$STORM" -le 256 ] || fail "BENCH_RBD_STORM must be 1..256"
[ "$IMG_MIB" -ge 64 ] || fail "BENCH_RBD_IMAGE_MIB must be at least 64 (the boot set)"
TPIN=()
[ "$PIN" = 1 ] && TPIN=(--pin 1)

echo "== pristine on Ceph RBD vs tgt-rbd vs pristine on a local file (bench/rbd.sh)"
echo "   $(nproc) CPUs, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   tree: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')," \
     "ceph $(dpkg-query -W -f='${Version}' ceph-osd 2>/dev/null), tgt-rbd $(dpkg-query -W -f='${Version}' tgt-rbd 2>/dev/null)"
echo "   rounds $ROUNDS, runs of ${SECS} s, golden ${IMG_MIB} MiB, storm $STORM sessions x 64 MiB, reset after ${RESET_MIB} MiB"
t0=$SECONDS
export CEPH_BLUESTORE_BYTES=${CEPH_BLUESTORE_BYTES:-4294967296}
ceph_start "$dir/ceph" bluestore
trap 'set +e; ceph_stop; cleanup_common' EXIT
echo "   cluster up in $((SECONDS - t0)) s: mon $CEPH_MON, one bluestore OSD ($((CEPH_BLUESTORE_BYTES >> 30)) GiB sparse file), pool $CEPH_POOL, size 1"
OSD_ASOK=$dir/ceph/run/osd.0.asok
[ -S "$OSD_ASOK" ] || fail "no admin socket of osd.0 in $dir/ceph/run"

# The golden: random data (reads are real reads), an RBD snapshot (the
# version), protected (tgt's clones of it); the same bytes in a local file.
dd if=/dev/urandom of="$dir/golden.raw" bs=1M count="$IMG_MIB" status=none
timeout 300 rbd import --no-progress "$dir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"
timeout 30 rbd snap protect "$CEPH_POOL/golden@v1" || fail "rbd snap protect"
timeout 30 rbd create --size "${RESET_MIB}M" "$CEPH_POOL/big" || fail "rbd create big"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/big@v1" >/dev/null || fail "rbd snap create big"
timeout 30 rbd snap protect "$CEPH_POOL/big@v1" || fail "rbd snap protect big"
sync
echo "   golden imported in $((SECONDS - t0)) s since the start: $(rbd info "$CEPH_POOL/golden" | grep -E 'order' | sed 's/^[[:space:]]*//')"
echo

osd_read_bytes() {
	ceph --admin-daemon "$OSD_ASOK" perf dump | python3 -c 'import json, sys; print(json.load(sys.stdin)["osd"]["op_r_out_bytes"])'
}

# wait_listen LOG: the daemon $pid logged that it listens (10 s at most).
wait_listen() {
	for _ in $(seq 100); do
		grep -q "listening on" "$1" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$1" >&2; fail "pristined died at start"; }
		sleep 0.1
	done
	fail "pristined did not start listening"
}

start_prbd() {
	rm -rf "$dir/state"
	cat >"$dir/pristine.conf" <<-EOF
	[server]
	listen = 127.0.0.1:$PORT
	state = $dir/state
	nop-interval = 0
	ceph-conf = $CEPH_CONF
	ceph-id = admin
	${BENCH_RBD_SERVER_CONF:-}

	[defaults]
	image = golden

	[client big]
	initiator = $INI-big
	image = big

	[image golden]
	rbd = $CEPH_POOL/golden@v1
	${BENCH_RBD_IMAGE_CONF:-}

	[image big]
	rbd = $CEPH_POOL/big@v1
	${BENCH_RBD_IMAGE_CONF:-}
	EOF
	: >"$dir/d.log"
	$(srv_pin) "$PRISTINED" -c "$dir/pristine.conf" 2>"$dir/d.log" &
	pid=$!
	wait_listen "$dir/d.log"
	TARGET=$P_T CUR=127.0.0.1:$PORT LUN=0
}

start_plocal() {
	bench_start "$PRISTINED" "$PORT" "$dir/golden.raw"
	TARGET=$P_T CUR=127.0.0.1:$PORT LUN=0
}

CLONE=""
start_tgtrbd() {
	CLONE=tgt-$1
	timeout 30 rbd clone "$CEPH_POOL/golden@v1" "$CEPH_POOL/$CLONE" || fail "rbd clone"
	tgt_start --image "$CEPH_POOL/$CLONE" --bstype rbd --bsopts "conf=$CEPH_CONF;id=admin" \
		--portal "$TGT_PORTAL" --control "$TGT_CTL" --dir "$dir" --target "$TGT_T" "${TPIN[@]}" ||
		{ tail "$dir/tgtd.log" >&2; fail "tgtd with bs_rbd did not start"; }
	TARGET=$TGT_T CUR=$TGT_PORTAL LUN=1
	if [ -z "${TGT_SHOWN:-}" ]; then
		TGT_SHOWN=1
		printf '  %-7s %-8s %s; %s threads (main + I/O workers)\n' tgtrbd config \
			"$(tgtadm -C "$TGT_CTL" --lld iscsi --op show --mode target | awk '/LUN: 1/ { p = 1 } p && /Backing store (type|path)/' |
			   sed 's/^ *//' | tr '\n' ';' | sed 's/;$//; s/;/, /')" "$(ls "/proc/$TGT_PID/task" | wc -l)"
	fi
}

# start WHO PHASE / stop WHO: a target on fresh overlays (tgt: a fresh clone).
start() {
	case $1 in
	prbd) start_prbd ;;
	plocal) start_plocal ;;
	tgtrbd) start_tgtrbd "$2" ;;
	esac
}
stop() {
	if [ "$1" = tgtrbd ]; then
		tgt_stop --control "$TGT_CTL" --dir "$dir"
		timeout 60 rbd rm --no-progress "$CEPH_POOL/$CLONE" || fail "rbd rm $CLONE"
		CLONE=""
	else
		cat "$dir/d.log" >>"$dir/daemon.logs"
		bench_stop
		rm -rf "$dir/state"
		[ "$1" != prbd ] || pool_tidy
	fi
}

# pool_tidy: images (and trashed images) a stopped pristined left in the
# pool - its drafts, and its overlays' data images (storage/ovl_ceph.h) -
# and its RADOS objects (pristine.*: the overlays' markers, metadata and
# index) are removed, best effort, so that phases and rounds do not fill
# the OSD.
pool_tidy() {
	local img snap obj n=0 o=0
	for _ in 1 2 3; do
		for img in $(timeout 30 rbd ls "$CEPH_POOL" 2>/dev/null); do
			case $img in golden | big | tgt-*) continue ;; esac
			for snap in $(timeout 30 rbd snap ls "$CEPH_POOL/$img" 2>/dev/null | awk 'NR > 1 { print $2 }'); do
				timeout 30 rbd snap unprotect "$CEPH_POOL/$img@$snap" >/dev/null 2>&1 || true
			done
			timeout 60 rbd snap purge --no-progress "$CEPH_POOL/$img" >/dev/null 2>&1 || true
			timeout 60 rbd rm --no-progress "$CEPH_POOL/$img" >/dev/null 2>&1 && n=$((n + 1))
		done
		for img in $(timeout 30 rbd trash ls "$CEPH_POOL" 2>/dev/null | awk '{ print $1 }'); do
			timeout 60 rbd trash rm --force --no-progress "$CEPH_POOL/$img" >/dev/null 2>&1 && n=$((n + 1))
		done
	done
	for obj in $(timeout 30 rados -p "$CEPH_POOL" ls 2>/dev/null | grep '^pristine\.'); do
		timeout 30 rados -p "$CEPH_POOL" rm "$obj" >/dev/null 2>&1 && o=$((o + 1))
	done
	[ "$n" -eq 0 ] && [ "$o" -eq 0 ] ||
		printf '  %-7s %-8s removed %d RBD images and %d RADOS objects pristined left in the pool\n' prbd tidy "$n" "$o"
}

# run ROUND WHO KEY iscsi_bench-args...: one measured run.
run() {
	local round=$1 who=$2 key=$3 out
	shift 3
	sync
	out=$($(cli_pin) "$BENCH" -p "$CUR" -T "$TARGET" -l "$LUN" -L "$key" "$@" 2>&1) || {
		# A storm a target cannot cope with is a result (FAIL), not the end.
		if [ "$key" = storm ]; then
			printf '  %-7s %-8s FAILED: %s\n' "$who" "$key" "$(tail -c 400 <<<"$out" | tr '\n' ' ')"
			echo "$round $who FAIL label=$key" >>"$RES"
			return 0
		fi
		fail "iscsi_bench failed ($who $key): $out"
	}
	printf '  %-7s %-8s %s\n' "$who" "$key" "$(grep -v '^RESULT' <<<"$out" | tr '\n' ' ')"
	echo "$round $who $(grep '^RESULT' <<<"$out")" >>"$RES"
}

# storm ROUND WHO: the boot storm, with the OSD's read bytes around it.
storm() {
	local r=$1 who=$2 b0 b1
	b0=$(osd_read_bytes)
	run "$r" "$who" storm -w boot -N "$STORM" -I "$INI-storm"
	b1=$(osd_read_bytes)
	printf '  %-7s %-8s OSD returned %s MiB to reads during the storm (osd.op_r_out_bytes)\n' \
		"$who" osd "$(( (b1 - b0) >> 20 ))"
	echo "$r $who EXTRA label=osd_mib value=$(( (b1 - b0) >> 20 ))" >>"$RES"
}

# reset_1g ROUND: a PC fills BIG with RESET_MIB MiB, then its reset is timed.
reset_1g() {
	local r=$1 json secs t0 t1 wall used
	TARGET=$BIG_T
	run "$r" prbd _fill -w seqwrite -q 8 -n "$RESET_MIB" -t 600 -I "$INI-big"
	TARGET=$P_T
	sync
	used=$("$BUILD/pristinectl" --state "$dir/state" --json client show "$INI-big" |
		grep -o '"used_bytes": *[0-9]*' | sed 's/.*: *//') || used=""
	t0=$(date +%s%N)
	json=$("$BUILD/pristinectl" --state "$dir/state" --json client reset "$INI-big" --force) ||
		fail "pristinectl client reset failed: $json"
	t1=$(date +%s%N)
	secs=$(grep -o '"seconds": *[0-9.e+-]*' <<<"$json" | sed 's/.*: *//')
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
	printf '  %-7s %-8s the PC held %s MiB (its used_bytes): api %s s, pristinectl wall %s s\n' prbd reset \
		"$([ -n "$used" ] && echo $((used >> 20)) || echo '?')" "${secs:-?}" "$wall"
	echo "$r prbd EXTRA label=reset_wall value=$wall" >>"$RES"
	[ -z "$secs" ] || echo "$r prbd EXTRA label=reset_api value=$secs" >>"$RES"
}

round() {
	local r=$1 who=$2
	start "$who" "r$r-storm"
	storm "$r" "$who"
	stop "$who"
	start "$who" "r$r-read"
	run "$r" "$who" rr4k -w randread -q 32 -t "$SECS" -I "$INI-rr"
	stop "$who"
	start "$who" "r$r-write"
	run "$r" "$who" rw4k -w randwrite -q 32 -n "$NBLK" -t "$SECS" -I "$INI-rw"
	[ "$who" != prbd ] || reset_1g "$r"
	stop "$who"
}

START=$SECONDS
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	set -- prbd tgtrbd plocal
	for _ in $(seq $(( (r - 1) % 3 ))); do set -- "${@:2}" "$1"; done
	for who in "$@"; do
		round "$r" "$who"
	done
done
echo
echo "== medians over $ROUNDS round(s) ($((SECONDS - START)) s)"
mkdir -p "$BUILD/bench"
cp "$RES" "$BUILD/bench/rbd-results.txt"

awk -v storm="$STORM" -v resetmib="$RESET_MIB" "$BENCH_AWK_MEDIAN"'
function num(v) { return v == "" ? "-" : sprintf("%.1f", v) }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
# goal(TEXT, VALUE, LIMIT, GE, DETAIL): met when VALUE >= LIMIT (GE) or < LIMIT.
function goal(text, v, limit, ge, detail,    ok) {
	if (v == "-" || v == "") { printf "  %-58s %-8s %s\n", text, "n/a", detail; return }
	ok = ge ? (v + 0 >= limit) : (v + 0 < limit)
	printf "  %-58s %-8s %s\n", text, ok ? "met" : "NOT met", detail
}
{
	who = $2; delete f
	for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
	key = f["label"]
	if ($3 == "FAIL") { failed[who, key]++; next }
	if ($3 == "EXTRA") { val[who, key] = val[who, key] " " f["value"]; next }
	if (key ~ /^_/) next
	if (f["workload"] == "boot") {
		val[who, key] = val[who, key] " " f["mibs"]; p99[who, key] = p99[who, key] " " f["done_p99_s"]
		setmib = f["set_mib"]
	} else {
		val[who, key] = val[who, key] " " f["iops"]; p99[who, key] = p99[who, key] " " f["lat_p99_us"]
	}
}
END {
	split("prbd tgtrbd plocal", w, " ")
	split("rr4k rw4k storm osd_mib", k, " ")
	unit["rr4k"] = "IOPS"; unit["rw4k"] = "IOPS"; unit["storm"] = "MiB/s"; unit["osd_mib"] = "MiB"
	printf "%-9s %-6s %10s %10s %10s %9s %10s\n", "workload", "unit", "prbd", "tgtrbd", "plocal", "prbd/tgt", "prbd/local"
	for (i = 1; i <= 4; i++) {
		for (j = 1; j <= 3; j++) m[w[j], k[i]] = median(val[w[j], k[i]])
		printf "%-9s %-6s %10s %10s %10s %9s %10s\n", k[i], unit[k[i]], num(m["prbd", k[i]]), \
			num(m["tgtrbd", k[i]]), num(m["plocal", k[i]]), ratio(m["prbd", k[i]], m["tgtrbd", k[i]]), \
			ratio(m["prbd", k[i]], m["plocal", k[i]])
	}
	printf "p99: rr4k/rw4k per command (us), storm per-session completion (s)\n"
	for (i = 1; i <= 3; i++)
		printf "%-9s %-6s %10s %10s %10s\n", k[i], "p99", median(p99["prbd", k[i]]) "", \
			median(p99["tgtrbd", k[i]]) "", median(p99["plocal", k[i]]) ""
	for (j = 1; j <= 3; j++)
		if ((w[j], "storm") in failed) printf "FAILED: %s storm in %d round(s)\n", w[j], failed[w[j], "storm"]
	rw = median(val["prbd", "reset_wall"]); ra = median(val["prbd", "reset_api"])
	if (setmib == "") setmib = 64

	print ""
	print "goals of issue 14 (prbd = pristined on RBD, tgtrbd = tgt bs_rbd on an RBD clone, plocal = pristined on a local file):"
	o = m["prbd", "rr4k"]; t = m["tgtrbd", "rr4k"]
	goal("4 KiB random read QD32: prbd >= 2x tgtrbd", ratio(o, t), 2, 1, sprintf("%s vs %s IOPS = %sx", num(o), num(t), ratio(o, t)))
	o = m["prbd", "rw4k"]; t = m["tgtrbd", "rw4k"]
	goal("4 KiB random write QD32, fresh overlay/clone: prbd >= 2x", ratio(o, t), 2, 1, sprintf("%s vs %s IOPS = %sx", num(o), num(t), ratio(o, t)))
	o = m["prbd", "storm"]; t = m["tgtrbd", "storm"]; l = m["plocal", "storm"]
	goal(storm "-PC boot storm: prbd >= 3x tgtrbd", ratio(o, t), 3, 1, sprintf("%s vs %s MiB/s = %sx", num(o), num(t), ratio(o, t)))
	goal(storm "-PC boot storm: prbd >= 0.5x plocal", ratio(o, l), 0.5, 1, sprintf("%s vs %s MiB/s = %sx", num(o), num(l), ratio(o, l)))
	o = m["prbd", "osd_mib"]
	goal("OSD bytes read during the storm <= 1.5x one boot set", ratio(o, setmib), 1.5001, 0, \
		sprintf("%s MiB for a %s MiB boot set = %sx (tgtrbd: %s MiB)", num(o), setmib, ratio(o, setmib), num(m["tgtrbd", "osd_mib"])))
	goal("reset of a PC holding " resetmib " MiB < 50 ms (pristinectl wall)", rw == "" ? "" : rw * 1000, 50, 0, \
		sprintf("%s ms wall, %s ms in the API", rw == "" ? "-" : sprintf("%.1f", rw * 1000), ra == "" ? "-" : sprintf("%.1f", ra * 1000)))
}' "$RES"
