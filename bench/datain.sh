#!/usr/bin/env bash
# bench/datain.sh - how Data-In is sent (src/proto/datain.c), measured:
# the same image, warm, served by pristined in each mode in turn.  Prints
# numbers; never passes or fails on them.
#
#   bash bench/datain.sh        (after `make bench-build`)
#
# Modes: "per-pdu" (the default: a READ of several PDUs is read PDU by
# PDU, each just before it is sent), "zero-copy" (--zero-copy: PDUs of
# 64 KiB and more spliced from the page cache), and "base" when
# BENCH_DATAIN_BASE names another pristined binary (e.g. one built from an
# older commit, to see what a change bought).
#
# BENCH_DATAIN_ROUNDS (5) rounds, the modes' order rotated every round: a
# fresh daemon (client overlay empty, so reads come from the golden
# image's page cache), then sequential reads at QD8 of 1 MiB and of
# 64 KiB, BENCH_DATAIN_SECS (5) s each.  Per run: MiB/s and the daemon's
# CPU time per GiB sent (utime + stime from /proc).  Reported: medians,
# and each mode against per-pdu.
#
# Pinning as in run.sh (BENCH_PIN=1): the daemon on CPU 1, the load
# generator on CPU 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init datain
MIB=${BENCH_IMAGE_MIB:-1024}
ROUNDS=${BENCH_DATAIN_ROUNDS:-5}
SECS=${BENCH_DATAIN_SECS:-5}
PORT=${BENCH_DATAIN_PORT:-13275}
BASE=${BENCH_DATAIN_BASE:-}
MODES="per-pdu zero-copy${BASE:+ base}"
T=iqn.2026-11.org.pristine:g
HZ=$(getconf CLK_TCK)

head -c $((MIB << 20)) /dev/urandom >"$dir/g.img"
cat "$dir/g.img" >/dev/null

start() {   # start MODE
	case $1 in
	zero-copy) bench_start "$PRISTINED" "$PORT" "$dir/g.img" --zero-copy ;;
	base) bench_start "$BASE" "$PORT" "$dir/g.img" ;;
	*) bench_start "$PRISTINED" "$PORT" "$dir/g.img" ;;
	esac
}
stop() { bench_stop; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

# run MODE BYTES: one measured run; appends "MODE BYTES MIBS CPU_MS_PER_GIB"
run() {
	local mode=$1 bytes=$2 c0 c1 out mibs
	c0=$(cpu_ticks)
	out=$($(cli_pin) "$BENCH" -p "127.0.0.1:$PORT" -T "$T" -l 0 -w seqread -q 8 -b "$bytes" \
		-t "$SECS" -L "$mode" 2>&1) || { echo "datain.sh: iscsi_bench failed: $out" >&2; exit 1; }
	c1=$(cpu_ticks)
	mibs=$(sed -n 's/.* \([0-9.]*\) MiB\/s.*/\1/p' <<<"$out" | head -1)
	awk -v m="$mode" -v b="$bytes" -v r="$mibs" -v c=$((c1 - c0)) -v hz="$HZ" -v s="$SECS" \
		'BEGIN { gib = r * s / 1024; printf "%s %s %s %.1f\n", m, b, r, (gib > 0 ? c * 1000 / hz / gib : 0) }' \
		>>"$dir/res"
	printf '  %-9s %7s B: %8s MiB/s, daemon CPU %s ms per GiB\n' "$mode" "$bytes" "$mibs" \
		"$(tail -1 "$dir/res" | cut -d' ' -f4)"
}

echo "== Data-In modes (bench/datain.sh): $MIB MiB image, $ROUNDS rounds of $SECS s runs, QD8${BASE:+, base = $BASE}"
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	set -- $MODES
	for _ in $(seq $(( (r - 1) % $# ))); do set -- "${@:2}" "$1"; done
	for mode in "$@"; do
		start "$mode"
		# warm-up: the session, the overlay's first metadata
		$(cli_pin) "$BENCH" -p "127.0.0.1:$PORT" -T "$T" -l 0 -w seqread -q 8 -t 1 -L warm >/dev/null 2>&1
		run "$mode" 1048576
		run "$mode" 65536
		stop
	done
done

echo "-- medians"
med() { bench_median; }
for bytes in 1048576 65536; do
	for mode in $MODES; do
		m=$(awk -v m="$mode" -v b="$bytes" '$1 == m && $2 == b { print $3 }' "$dir/res" | med)
		c=$(awk -v m="$mode" -v b="$bytes" '$1 == m && $2 == b { print $4 }' "$dir/res" | med)
		echo "$mode $bytes $m $c"
	done
done >"$dir/med"
awk '{ m[$1, $2] = $3; c[$1, $2] = $4; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
     END {
	for (i = 0; i < 2; i++) {
		k = i ? 65536 : 1048576
		printf "  %7s B reads:\n", k
		for (j = 1; j <= n; j++) {
			md = order[j]
			printf "    %-9s %8.1f MiB/s  %7.1f ms daemon CPU per GiB", md, m[md, k], c[md, k]
			if (md != "per-pdu")
				printf "   vs per-pdu: throughput x%.2f, CPU per byte x%.2f", \
				       m[md, k] / m["per-pdu", k], c[md, k] / c["per-pdu", k]
			printf "\n"
		}
	}
     }' "$dir/med"
