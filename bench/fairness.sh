#!/usr/bin/env bash
# bench/fairness.sh - issue 6: "one client streaming must not starve a
# booting one".  Prints numbers; never passes or fails on them.
#
#   bash bench/fairness.sh        (after `make bench-build`; tgt via bench/deps.sh)
#
# For pristined (overlay per client) and tgt (file-backed LUN), in turn,
# BENCH_FAIR_ROUNDS (3) times:
#   alone:     one PC boots: iscsi_bench -w boot -N 1 reads a 256 MiB boot
#              set (mixed sizes 4 KiB..1 MiB, QD4) - its completion time T0;
#   streaming: BENCH_FAIR_STREAMERS (1) other client(s) each stream 1 MiB
#              sequential reads at QD32 from another part of the disk (its
#              own initiator name, so on pristined its own overlay), and
#              2 s later the PC boots again - completion time T1; the
#              streamers run BENCH_FAIR_STREAM_SECS (12) s, their MiB/s over
#              that time is shown.
# Reported: median T0, T1, the slowdown T1/T0 and the streamer's MiB/s,
# for both targets.  A fair target keeps T1/T0 near what sharing the link
# costs (about 1 + streamers when both are limited by the same pipe); a
# target that serves the deep queue first makes the booting PC wait.
#
# Pinning as in run.sh (BENCH_PIN=1): the target on CPU 1, every client
# on CPU 0 - so the clients also share one CPU; the comparison between
# targets is what counts.  The page cache is warm (images read once).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init fair
MIB=${BENCH_IMAGE_MIB:-1024}
ROUNDS=${BENCH_FAIR_ROUNDS:-3}
NSTREAM=${BENCH_FAIR_STREAMERS:-1}
PORT=${BENCH_FAIR_PORT:-13270}
STREAM_SECS=${BENCH_FAIR_STREAM_SECS:-12}   # streamers run this long; the boot starts 2 s in
have_tgt=0
command -v tgtd >/dev/null && command -v tgtadm >/dev/null && have_tgt=1
. bench/tgt.sh

bench_cleanup_more() {
	[ "$have_tgt" = 1 ] && tgt_stop --control $((PORT + 2)) --dir "$dir" >/dev/null 2>&1
	true
}

head -c $((MIB << 20)) /dev/urandom >"$dir/g.img"
cp "$dir/g.img" "$dir/tgt.img"
cat "$dir/g.img" "$dir/tgt.img" >/dev/null

# boot URL PORT TARGET LUN LABEL: one booting PC; prints its completion time
boot() {
	$(cli_pin) "$BENCH" -p "127.0.0.1:$1" -T "$2" -l "$3" -w boot -N 1 -r 256 \
		-I "iqn.2026-11.bench:pc-$4" -L "$4" | sed -n 's/^RESULT .* done_max_s=\([0-9.]*\).*/\1/p'
}

# one_target NAME PORT TARGET LUN: the rounds against one target
declare -A T0 T1 SM
one_target() {
	local name=$1 port=$2 target=$3 lun=$4 r k t0 t1 spids=() mibs
	for r in $(seq 1 "$ROUNDS"); do
		t0=$(boot "$port" "$target" "$lun" "$name-alone-$r")
		for k in $(seq 1 "$NSTREAM"); do
			# streamers read 512..768 MiB, the boot set is the first 256 MiB
			$(cli_pin) "$BENCH" -p "127.0.0.1:$port" -T "$target" -l "$lun" -w seqread -b 1048576 \
				-q 32 -o 512 -r 256 -t "$STREAM_SECS" -I "iqn.2026-11.bench:stream-$r-$k" -L "stream$k" \
				>"$dir/stream-$name-$r-$k.out" 2>&1 &
			spids+=($!)
		done
		sleep 2
		t1=$(boot "$port" "$target" "$lun" "$name-busy-$r")
		wait "${spids[@]}" 2>/dev/null || true   # they stop on their own (-t)
		spids=()
		mibs=$(sed -n 's/^RESULT .* mibs=\([0-9.]*\).*/\1/p' "$dir"/stream-"$name"-"$r"-*.out | paste -sd+ | bc)
		printf '  %-8s round %d: boot alone %6.3f s, beside %d streamer(s) %6.3f s (x%.2f); streamers %s MiB/s\n' \
			"$name" "$r" "$t0" "$NSTREAM" "$t1" "$(echo "$t1 / $t0" | bc -l)" "${mibs:-?}"
		T0[$name]+="$t0 "; T1[$name]+="$t1 "; SM[$name]+="${mibs:-0} "
	done
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "== fairness: one PC boots while $NSTREAM client(s) stream 1 MiB reads at QD32"
echo "   image $MIB MiB, rounds $ROUNDS, pinning $([ "$PIN" = 1 ] && echo 'target CPU 1, clients CPU 0' || echo off), load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
$(srv_pin) "$PRISTINED" --image "$dir/g.img" --listen "127.0.0.1:$PORT" --state "$dir/state" \
	--target iqn.2026-11.org.pristine:fair >"$dir/pristined.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$dir/pristined.log" && break; sleep 0.1; done
one_target pristine "$PORT" iqn.2026-11.org.pristine:fair 0
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
if [ "$have_tgt" = 1 ]; then
	tgt_start --image "$dir/tgt.img" --portal "127.0.0.1:$((PORT + 1))" --control $((PORT + 2)) \
		--dir "$dir" $([ "$PIN" = 1 ] && echo "--pin 1") >/dev/null
	one_target tgt $((PORT + 1)) iqn.2026-11.org.pristine:bench-tgt 1
	tgt_stop --control $((PORT + 2)) --dir "$dir" >/dev/null 2>&1 || true
else
	echo "  tgt: not installed (bash bench/deps.sh), skipped"
fi
echo
printf '%-10s %12s %14s %9s %16s\n' target "boot alone" "beside stream" slowdown "streamers MiB/s"
for name in pristine tgt; do
	[ -n "${T0[$name]:-}" ] || continue
	a=$(echo "${T0[$name]}" | median); b=$(echo "${T1[$name]}" | median); m=$(echo "${SM[$name]}" | median)
	printf '%-10s %10.3f s %12.3f s %8.2fx %16s\n' "$name" "$a" "$b" "$(echo "$b / $a" | bc -l)" "$m"
	echo "RESULT label=fairness target=$name boot_alone_s=$a boot_beside_s=$b slowdown=$(echo "$b / $a" | bc -l | cut -c1-5) stream_mibs=$m"
done
