#!/usr/bin/env bash
# bench/inflight.sh - one session's 4 KiB random reads at QD1/8/32/64 on a
# store with latency: the daemon runs under build/faultinject.so with a
# rule that sleeps BENCH_DELAY_US (1000) before every read of the golden
# image, like a network disk (issue 14: "caps a PC at about 1k IOPS on a
# store with 1 ms latency").  With commands of a session in flight at once
# (src/proto/inflight.c) IOPS grow with the queue depth up to
# conn_inflight (32).  Prints numbers; never passes or fails on them.
#
#   bash bench/inflight.sh                  (after make bench-build build/faultinject.so)
#   BENCH_AB_OLD=/path/to/old/pristined bash bench/inflight.sh   (the same for another binary too)
#   BENCH_BS=1048576 bash bench/inflight.sh (another read size: 1 MiB reads
#                                           are streamed on a fast store)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init inflight
SHIM=$BUILD/faultinject.so
[ -r "$SHIM" ] || { echo "inflight.sh: $SHIM is not built (make $SHIM)" >&2; exit 1; }
DELAY=${BENCH_DELAY_US:-1000}
SECS=${BENCH_SECS:-5}
BS=${BENCH_BS:-4096}
PORT=${BENCH_PORT:-13277}
T=iqn.2026-11.org.pristine:g
OLD=${BENCH_AB_OLD:-}

head -c $((256 << 20)) /dev/urandom >"$dir/g.img"
echo "ops=read path=*/g.img delay_us=$DELAY" >"$dir/fault.ctl"

# A daemon binary as one that runs under the shim.
wrap() {
	printf '#!/bin/sh\nLD_PRELOAD=%s FAULT_CTL=%s exec %s "$@"\n' "$(realpath "$SHIM")" \
		"$dir/fault.ctl" "$(realpath "$1")" >"$dir/$2"
	chmod +x "$dir/$2"
}

echo "== random reads of $BS bytes, one session, every read of the image delayed ${DELAY} us; $SECS s each"
wrap "$PRISTINED" new
labels=new
if [ -n "$OLD" ]; then
	wrap "$OLD" old
	labels="old new"
fi
for label in $labels; do
	bench_start "$dir/$label" "$PORT" "$dir/g.img"
	for qd in 1 8 32 64; do
		out=$($(cli_pin) "$BENCH" -p "127.0.0.1:$PORT" -T "$T" -l 0 -w randread -q "$qd" -b "$BS" \
			-t "$SECS" -L "$label" 2>&1) || { echo "inflight.sh: iscsi_bench failed: $out" >&2; exit 1; }
		v=$(sed -n 's/.* \([0-9.]*\) IOPS.*/\1/p' <<<"$out" | head -1)
		printf '  %-4s QD%-3s %10s IOPS\n' "$label" "$qd" "$v"
	done
	bench_stop
done
