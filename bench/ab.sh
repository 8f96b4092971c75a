#!/usr/bin/env bash
# bench/ab.sh - two pristined binaries side by side on the hot paths: an
# A/B of a change (issue 13: the reorganisation must cost nothing).
# Prints numbers; never passes or fails on them.
#
#   BENCH_AB_OLD=/path/to/old/pristined bash bench/ab.sh   (after make bench-build)
#   BENCH_AB_REV=68d3718 bash bench/ab.sh   (builds that commit's daemon in a
#                                           scratch clone first)
#
# "new" is build/pristined.  Each round starts a fresh daemon of each
# binary in turn (the order alternates), on the same warm image, and runs
#   4 KiB random reads at QD32   (IOPS)
#   1 MiB sequential reads at QD8 (MiB/s)
# for BENCH_AB_SECS (5) s each.  BENCH_AB_ROUNDS (5) rounds; reported: the
# medians and new/old.  Pinning as in run.sh (BENCH_PIN=1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init ab
MIB=${BENCH_IMAGE_MIB:-1024}
ROUNDS=${BENCH_AB_ROUNDS:-5}
SECS=${BENCH_AB_SECS:-5}
PORT=${BENCH_AB_PORT:-13276}
T=iqn.2026-11.org.pristine:g
OLD=${BENCH_AB_OLD:-}

if [ -z "$OLD" ]; then
	rev=${BENCH_AB_REV:?set BENCH_AB_OLD=BINARY or BENCH_AB_REV=COMMIT}
	echo "== building pristined at $rev"
	git clone -q . "$dir/src"
	git -C "$dir/src" checkout -q "$rev"
	make -C "$dir/src" -s -j2 build/pristined >/dev/null
	OLD=$dir/src/build/pristined
fi

head -c $((MIB << 20)) /dev/urandom >"$dir/g.img"
cat "$dir/g.img" >/dev/null

# run LABEL WORKLOAD BYTES QD: one run, appends "LABEL WORKLOAD VALUE"
run() {
	local label=$1 w=$2 bytes=$3 qd=$4 out v
	out=$($(cli_pin) "$BENCH" -p "127.0.0.1:$PORT" -T "$T" -l 0 -w "$w" -q "$qd" -b "$bytes" \
		-t "$SECS" -L "$label" 2>&1) || { echo "ab.sh: iscsi_bench failed: $out" >&2; exit 1; }
	if [ "$w" = randread ]; then
		v=$(sed -n 's/.* \([0-9.]*\) IOPS.*/\1/p' <<<"$out" | head -1)
	else
		v=$(sed -n 's/.* \([0-9.]*\) MiB\/s.*/\1/p' <<<"$out" | head -1)
	fi
	[ -n "$v" ] || { echo "ab.sh: no figure in: $out" >&2; exit 1; }
	echo "$label $w $v" >>"$dir/res"
	printf '  %-4s %-8s %10s %s\n' "$label" "$w" "$v" "$([ "$w" = randread ] && echo IOPS || echo MiB/s)"
}

echo "== A/B (bench/ab.sh): new = $PRISTINED, old = $OLD; $MIB MiB image, $ROUNDS rounds of $SECS s"
for r in $(seq "$ROUNDS"); do
	echo "-- round $r"
	if [ $((r % 2)) -eq 1 ]; then order="new old"; else order="old new"; fi
	for label in $order; do
		bin=$PRISTINED
		[ "$label" = old ] && bin=$OLD
		bench_start "$bin" "$PORT" "$dir/g.img"
		$(cli_pin) "$BENCH" -p "127.0.0.1:$PORT" -T "$T" -l 0 -w seqread -q 8 -t 1 -L warm >/dev/null 2>&1
		run "$label" randread 4096 32
		run "$label" seqread 1048576 8
		bench_stop
	done
done

echo "-- medians"
for w in randread seqread; do
	n=$(awk -v w=$w '$1 == "new" && $2 == w { print $3 }' "$dir/res" | bench_median)
	o=$(awk -v w=$w '$1 == "old" && $2 == w { print $3 }' "$dir/res" | bench_median)
	awk -v w=$w -v n="$n" -v o="$o" 'BEGIN {
		printf "  %-26s new %10.1f  old %10.1f  new/old %.3f\n",
		       (w == "randread" ? "4 KiB random reads QD32" : "1 MiB sequential reads QD8") \
		       (w == "randread" ? " IOPS" : " MiB/s"), n, o, n / o }'
done
