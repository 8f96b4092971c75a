#!/usr/bin/env bash
# bench/inflight_rbd.sh - one session's 4 KiB random reads at QD1/8/32 of
# a golden image on Ceph RBD (a throwaway one-node memstore cluster from
# tests/lib/ceph.sh, 256 MiB image, snapshot v1), through the client's
# overlay: the store with real latency of issue 14.  build/pristined is
# "new"; BENCH_AB_OLD=/path/to/old/pristined adds "old".  Prints numbers;
# never passes or fails on them.  The OSD shares this machine's CPUs.
#
#   bash bench/inflight_rbd.sh      (after make bench-build; Ceph packages: make deps)
cd "$(dirname "$0")/.."
PRISTINED=$PWD/build/pristined
. tests/lib/common.sh
. tests/lib/ceph.sh
ceph_start "$tmpdir/ceph" memstore
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
head -c $((256 << 20)) /dev/urandom >"$tmpdir/g.raw"
timeout 120 rbd import --no-progress "$tmpdir/g.raw" "$CEPH_POOL/golden" || fail import
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail snap
labels=new; [ -n "${BENCH_AB_OLD:-}" ] && labels="old new"
for label in $labels; do
	bin=$PWD/build/pristined
	[ $label = old ] && bin=$BENCH_AB_OLD
	rm -rf "$tmpdir/state"
	PORT=$(free_port)
	cat >"$tmpdir/p.conf" <<EOC
[server]
listen = 127.0.0.1:$PORT
state = $tmpdir/state
ceph-conf = $PCONF
ceph-id = pristine

[image golden]
rbd = $CEPH_POOL/golden@v1
EOC
	"$bin" -c "$tmpdir/p.conf" >"$tmpdir/d.log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do grep -q listening "$tmpdir/d.log" && break; sleep 0.1; done
	for qd in 1 8 32; do
		out=$(build/bench/iscsi_bench -p 127.0.0.1:$PORT -T iqn.2026-11.org.pristine:golden -l 0 -w randread -q $qd -b 4096 -t 5 -s $qd -L $label 2>&1)
		echo "$label QD$qd $(sed -n 's/.* \([0-9.]*\) IOPS.*/\1/p' <<<"$out" | head -1) IOPS $(grep -o 'p50[^ ]* *[^ ]*' <<<"$out" | head -1)"
	done
	kill $DPID; wait $DPID; DPID=
done
