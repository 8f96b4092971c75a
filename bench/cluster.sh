#!/bin/bash
# cluster.sh - the cluster part of `make bench` (also `make bench-cluster`),
# issue 15's "What it must show" 5.  PRINTS NUMBERS: nothing fails on a
# number.  Method and results: BENCHMARKS.md, "Cluster of gateways".
#
# Everything runs in the lab network of tests/lib/netlab.sh (namespaces, a
# bridge for the PCs' net and one for the storage net): one single-node
# Ceph (memstore) in its namespace, three release pristined gateways gw1..3
# in theirs (listen 0.0.0.0:3260, cluster-address = the gateway's VIP,
# records in RADOS, the production beat of 1 s), keepalived on each
# (tests/lib/keepalived.sh, tracking `pristinectl cluster health`), and
# the load generators in the pc namespace.  The golden: STORM_MIB (64) MiB
# of random data on RBD with a snapshot (image golden = rbd/golden@v1).
#
#   storm    for G in 1 2 3: G gateways, each started fresh (cold read
#            cache); BENCH_CLUSTER_STORM (64) initiators (iscsi_bench -w
#            boot: each reads the same 64 MiB boot set in one shuffled
#            order of mixed-size extents, QD4, all starting at once) all
#            log in at gw1's VIP and are redirected by the placement
#            (login redirect, status 0x0101, which libiscsi follows).
#            Before each storm the placement object (pristine.cluster.pc)
#            is removed while every gateway is stopped, so that the PCs of
#            the previous storm, sticky on their gateways, do not count.
#            Printed: aggregate MiB/s, per-PC completion p50/p99, the
#            MiB the OSD returned to reads (each gateway has its own read
#            cache: one boot set per gateway), and per gateway the PCs the
#            placement gave it and the CPU seconds its pristined used
#            (from /proc) during the storm.
#   failover with 2 gateways, for each cluster-dead-after D in
#            BENCH_CLUSTER_DEAD ("2 5"): BENCH_CLUSTER_KILLS (10) kills.
#            Each kill: BENCH_CLUSTER_WRITERS (8) flushwriter PCs (write a
#            block, SYNCHRONIZE CACHE, again; reconnect every second)
#            started at gw1's VIP and spread by the placement; once all
#            write, kill -9 of the gateway serving most of them; its VIP
#            moves to the other gateway (keepalived: its health check
#            fails), which takes the PCs over (after D s without a beat,
#            fencing the dead one); once the table shows every PC on the
#            survivor the writers are stopped (SIGINT) and each writer
#            that saw a failure gives its stall: from the start of its
#            first failed write or flush to the acknowledgement of its
#            next write (flushwriter's longest_stall).  The killed
#            gateway is then started again and waited for (up in the
#            table, its VIP back).  Printed: per-PC stall p50/p99 over
#            every stalled PC of the KILLS kills, and the worst PC of each
#            kill (the kill's resume time) p50/p99.
#
# All of it shares the box's CPUs (2 here): Ceph, every gateway, the
# initiators, keepalived.  Growth with more gateways is bounded by the box,
# not by the design.
#
# Environment: BENCH_CLUSTER_STORM (64), BENCH_CLUSTER_GWS ("1 2 3"),
# BENCH_CLUSTER_KILLS (10), BENCH_CLUSTER_DEAD ("2 5"),
# BENCH_CLUSTER_WRITERS (8), BUILD (build), BENCH_KEEP=1 keeps the logs.  Needs root (ip netns),
# Ceph's daemons, keepalived and jq; without them it says why and exits 0.
# Every wait is bounded; every process is stopped by PID at the end.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-$PWD/build}
PRISTINED=$BUILD/pristined
CTL=$BUILD/pristinectl
BENCH=$BUILD/bench/iscsi_bench
FW=$BUILD/bench/flushwriter
. tests/lib/common.sh
# A bench skips with status 0 (make bench goes on).
skip() { echo "cluster.sh: skipped: $*"; exit 0; }
# BENCH_KEEP=1: the gateways' and keepalived's logs are kept at exit.
if [ "${BENCH_KEEP:-0}" = 1 ]; then
	eval "orig_$(declare -f cleanup_common)"
	cleanup_common() {
		local keep
		keep=$(mktemp -d /tmp/pristine-cluster-logs.XXXXXX)
		cp "$tmpdir"/gw*.log "$tmpdir"/fw.all "$NETLAB_DIR"/keepalived-*.log "$keep"/ 2>/dev/null
		echo "logs kept in $keep"
		orig_cleanup_common
	}
fi
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns)"
for tool in ip keepalived jq; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
for f in "$PRISTINED" "$CTL" "$BENCH" "$FW"; do
	[ -x "$f" ] || { echo "cluster.sh: $f is not built (make bench-build)" >&2; exit 1; }
done
. tests/lib/netlab.sh
. tests/lib/ceph.sh
ceph_needs

STORM=${BENCH_CLUSTER_STORM:-64}
GWS=${BENCH_CLUSTER_GWS:-1 2 3}
KILLS=${BENCH_CLUSTER_KILLS:-10}
DEADS=${BENCH_CLUSTER_DEAD:-2 5}
WRITERS=${BENCH_CLUSTER_WRITERS:-8}
STORM_MIB=64
PORT=3260
PFX=iqn.2026-12.org.pristine.bench
RES=$tmpdir/results
NGW=3
declare -A GW_PID GW_RUN

fail() {
	local f
	echo "cluster.sh: FAILED: $*"
	for f in "$tmpdir"/gw*.log "$NETLAB_DIR"/keepalived-gw*.log; do
		[ -f "$f" ] && { echo "--- $f (tail)"; tail -n 15 "$f"; }
	done
	exit 1
}

echo "== a cluster of gateways on one Ceph (bench/cluster.sh)"
echo "   $(nproc) CPUs shared by Ceph, every gateway, the initiators and keepalived: growth with"
echo "   gateways is bounded by this box, not by the design; nothing is pinned"
echo "   tree: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')," \
     "ceph $(dpkg-query -W -f='${Version}' ceph-osd 2>/dev/null), keepalived $(dpkg-query -W -f='${Version}' keepalived 2>/dev/null)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
T0=$SECONDS
netlab_create "$NGW"
ceph_start "$tmpdir/ceph" memstore
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
dd if=/dev/urandom of="$tmpdir/golden.raw" bs=1M count="$STORM_MIB" status=none
timeout 120 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"
rm -f "$tmpdir/golden.raw"
echo "   lab network, memstore Ceph and a ${STORM_MIB} MiB golden (rbd/golden@v1) up in $((SECONDS - T0)) s"

# gw_conf K DEAD: gateway K's configuration, cluster-dead-after DEAD.
gw_conf() {
	cat >"$tmpdir/gw$1.conf" <<-EOF
	[server]
	state = $tmpdir/gw$1
	listen = 0.0.0.0:$PORT
	nop-interval = 0
	ceph-conf = $PCONF
	ceph-id = pristine
	cluster-name = gw$1
	cluster-address = $(netlab_vip "$1"):$PORT
	cluster-pool = $CEPH_POOL
	cluster-dead-after = $2
	EOF
}

# gw_start K: pristined of gwK in its namespace; returns once it listens.
# A start refused because the table still shows gwK alive (its last beat
# is younger than cluster-dead-after) is tried again, bounded.
gw_start() {
	local k=$1 log try
	for try in $(seq 1 15); do
		GW_RUN[$k]=$((${GW_RUN[$k]:-0} + 1))
		log=$tmpdir/gw$k.${GW_RUN[$k]}.log
		netlab_bg "gw$k" "$log" "$PRISTINED" -c "$tmpdir/gw$k.conf"
		GW_PID[$k]=$NETLAB_PID
		for _ in $(seq 1 300); do
			grep -q listening "$log" 2>/dev/null && return 0
			kill -0 "${GW_PID[$k]}" 2>/dev/null || break
			sleep 0.1
		done
		netlab_stop "${GW_PID[$k]}"
		GW_PID[$k]=""
		grep -q "is alive already" "$log" || { tail -n 20 "$log"; fail "gw$k did not start"; }
		sleep 1
	done
	fail "gw$k was refused $try times (alive already)"
}
gw_stop() {
	[ -n "${GW_PID[$1]:-}" ] || return 0
	netlab_stop "${GW_PID[$1]}"
	GW_PID[$1]=""
}
ctl() { local k=$1; shift; timeout 30 "$CTL" --state "$tmpdir/gw$k" "$@"; }
has_vip() { ip -n "$(netlab_ns "gw$1")" -o addr show dev pc0 | grep -qF " $(netlab_vip "$2")/"; }
# n_up K: how many gateways gwK's table shows up.
n_up() { ctl "$1" --json cluster status | jq -r '[.gateways[] | select(.state == "up")] | length'; }
ups() { [ "$(n_up "$1")" -eq "$2" ]; }
# osd_read_bytes: bytes the OSD has returned to reads (its perf counter).
osd_read_bytes() {
	timeout 30 ceph --admin-daemon "$tmpdir/ceph/run/osd.0.asok" perf dump 2>/dev/null |
		jq -r '.osd.op_r_out_bytes // 0' 2>/dev/null || echo 0
}
# cpu_ticks PID: user + system clock ticks the process used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pct() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
	i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }

for k in $(seq 1 "$NGW"); do
	gw_conf "$k" 5
	mkdir -p "$tmpdir/gw$k"
done
gw_start 1
ctl 1 image add golden --rbd "$CEPH_POOL/golden@v1" >/dev/null || fail "image add golden"
TARGET=$(ctl 1 --json image list | jq -r '.images[] | select(.name == "golden") | .target')
[ -n "$TARGET" ] && [ "$TARGET" != null ] || fail "no target for image golden"
for k in $(seq 1 "$NGW"); do
	netlab_keepalived "gw$k" "timeout 2 $CTL --state $tmpdir/gw$k cluster health"
done
V1=$(netlab_vip 1)

# ------------------------------------------------------------ boot storms
# storm G: G gateways started fresh, STORM PCs at gw1's VIP.
storm() {
	local g=$1 k out pre rc=0 t0 spread="" b0 b1
	declare -A c0
	for k in $(seq 1 "$NGW"); do gw_stop "$k"; done
	# The placement starts empty (sticky placements of the previous
	# storm's PCs would count as load): its object goes while no gateway runs.
	timeout 30 rados -p "$CEPH_POOL" rm pristine.cluster.pc 2>/dev/null
	for k in $(seq 1 "$g"); do gw_start "$k"; done
	netlab_wait 30 ups 1 "$g" || fail "gw1 does not see $g gateways up"
	# Each gateway holds its own VIP (keepalived preempts once its health
	# check passes): a gateway whose address another one holds counts as
	# cut off from the PCs and gets none.
	for k in $(seq 1 "$g"); do
		netlab_wait 30 has_vip "$k" "$k" || fail "gw$k does not hold its VIP"
	done
	pre=$PFX:storm$g
	for k in $(seq 1 "$g"); do c0[$k]=$(cpu_ticks "${GW_PID[$k]}"); done
	b0=$(osd_read_bytes)
	t0=$SECONDS
	out=$(netlab_exec pc "$BENCH" -p "$V1:$PORT" -T "$TARGET" -w boot -N "$STORM" -I "$pre" -L "storm$g" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		printf '  %d gateway(s): FAILED: %s\n' "$g" "$(tail -c 400 <<<"$out" | tr '\n' ' ')"
		echo "storm $g FAIL" >>"$RES"
		return 0
	fi
	b1=$(osd_read_bytes)
	ctl 1 --json cluster status >"$tmpdir/status.json" || fail "cluster status"
	for k in $(seq 1 "$g"); do
		spread="$spread gw$k=$(jq -r --arg p "$pre-" --arg g "gw$k" \
			'[.pcs[] | select((.initiator | startswith($p)) and .gateway == $g)] | length' "$tmpdir/status.json")"
		spread="$spread/$(awk -v a="${c0[$k]}" -v b="$(cpu_ticks "${GW_PID[$k]}")" -v hz="$(getconf CLK_TCK)" \
			'BEGIN { printf "%.1f", (b - a) / hz }')s"
	done
	printf '  %d gateway(s): %s\n' "$g" "$(grep -v '^RESULT' <<<"$out" | tr '\n' ' ')"
	printf '  %d gateway(s): PCs/CPU seconds per gateway:%s (storm %d s wall); the OSD returned %s MiB to reads\n' \
		"$g" "$spread" "$((SECONDS - t0))" "$(( (b1 - b0) >> 20 ))"
	echo "storm $g $(grep '^RESULT' <<<"$out") osd_mib=$(( (b1 - b0) >> 20 )) split=${spread# }" >>"$RES"
}

echo
echo "-- boot storm: $STORM PCs x ${STORM_MIB} MiB boot set, all at gw1's VIP, redirected by the placement"
for g in $GWS; do
	storm "$g"
done

# ------------------------------------------------------------ failover
# online K: PCs gateway gwK serves, as the surviving gateway's table shows.
online() { ctl "$1" --json cluster status | jq -r --arg g "gw$2" '.gateways[] | select(.name == $g) | .pcs'; }
all_on() { [ "$(online "$1" "$2")" -eq "$WRITERS" ]; }
both_sum() { [ $(($(online 1 1) + $(online 1 2))) -eq "$WRITERS" ]; }

# one_kill D N: kill number N with cluster-dead-after D.
one_kill() {
	local d=$1 n=$2 fwpid victim other nv tk out stalls worst
	rm -f "$tmpdir/fw.state"
	netlab_bg pc "$tmpdir/fw.out" "$FW" -p "$V1:$PORT" -T "$TARGET" -s "$tmpdir/fw.state" \
		-I "$PFX:fw-d$d" -N "$WRITERS" -b 32 -t 900 -R 120
	fwpid=$NETLAB_PID
	netlab_wait 30 both_sum || fail "the $WRITERS writers are not all online (kill $n, dead-after $d)"
	sleep 2
	victim=1 other=2
	[ "$(online 1 2)" -gt "$(online 1 1)" ] && victim=2 other=1
	nv=$(online 1 "$victim")
	tk=$SECONDS
	kill -KILL "${GW_PID[$victim]}"
	gw_stop "$victim" 2>/dev/null    # (bash's "Killed" notice)
	netlab_wait 120 all_on "$other" "$other" || fail "gw$other did not take gw$victim's PCs over (kill $n, dead-after $d)"
	tk=$((SECONDS - tk))
	sleep 2
	netlab_stop "$fwpid" INT
	[ "$NETLAB_RC" -eq 0 ] || echo "  (kill $n: flushwriter exited with $NETLAB_RC: a writer gave up or ended stalled)"
	grep '^writer ' "$tmpdir/fw.out" | awk '$7 > 0 { print $11 }' | sort -g >"$tmpdir/stalls"
	stalls=$(wc -l <"$tmpdir/stalls")
	worst=$(tail -n 1 "$tmpdir/stalls")
	sed "s/^/stall $d /" "$tmpdir/stalls" >>"$RES"
	[ -z "$worst" ] || echo "worst $d $worst" >>"$RES"
	printf '  dead-after %s s, kill %2d: gw%d (%2d PCs) killed; %2d PCs stalled, p50 %s s, worst %s s; all on gw%d in the table after ~%d s\n' \
		"$d" "$n" "$victim" "$nv" "$stalls" "$(pct 50 <"$tmpdir/stalls")" "${worst:--}" "$other" "$tk"
	cat "$tmpdir/fw.out" >>"$tmpdir/fw.all"
	gw_start "$victim"
	netlab_wait 60 ups "$other" 2 || fail "gw$victim did not rejoin (kill $n)"
	netlab_wait 30 has_vip "$victim" "$victim" || fail "gw$victim's VIP did not come back (kill $n)"
}

echo
echo "-- failover: kill -9 of the gateway serving most of $WRITERS flushwriter PCs, $KILLS kills per cluster-dead-after;"
echo "   the PCs use gw1's VIP, keepalived moves a dead gateway's VIP to the other one, which takes its PCs over"
for d in $DEADS; do
	for k in $(seq 1 "$NGW"); do gw_stop "$k"; gw_conf "$k" "$d"; done
	gw_start 1
	gw_start 2
	netlab_wait 30 ups 1 2 || fail "gw1 does not see 2 gateways up"
	netlab_wait 30 has_vip 1 1 || fail "gw1 does not hold its VIP"
	netlab_wait 30 has_vip 2 2 || fail "gw2 does not hold its VIP"
	for n in $(seq 1 "$KILLS"); do
		one_kill "$d" "$n"
	done
done
for k in $(seq 1 "$NGW"); do gw_stop "$k"; done

# ------------------------------------------------------------ summary
mkdir -p "$BUILD/bench"
cp "$RES" "$BUILD/bench/cluster-results.txt"
echo
echo "== summary ($((SECONDS - T0)) s in all; $(nproc) CPUs shared by everything)"
printf '%-9s %10s %12s %12s %8s  %s\n' gateways "MiB/s" "PC done p50" "PC done p99" "OSD MiB" "PCs/CPU s per gateway"
base=""
for g in $GWS; do
	line=$(grep "^storm $g " "$RES")
	if grep -q FAIL <<<"$line"; then printf '%-9s %10s\n' "$g" FAILED; continue; fi
	mibs=$(grep -o 'mibs=[0-9.]*' <<<"$line" | cut -d= -f2)
	[ -n "$base" ] || base=$mibs
	printf '%-9s %10s %11ss %11ss %8s  %s (x%s of the first)\n' "$g" "$mibs" \
		"$(grep -o 'done_p50_s=[0-9.]*' <<<"$line" | cut -d= -f2)" \
		"$(grep -o 'done_p99_s=[0-9.]*' <<<"$line" | cut -d= -f2)" \
		"$(grep -o 'osd_mib=[0-9]*' <<<"$line" | cut -d= -f2)" \
		"$(sed 's/.*split=//' <<<"$line")" "$(awk -v a="$mibs" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
done
echo
printf '%-16s %6s %14s %14s %15s %15s\n' dead-after stalls "PC stall p50" "PC stall p99" "kill worst p50" "kill worst p99"
for d in $DEADS; do
	grep "^stall $d " "$RES" | cut -d' ' -f3 >"$tmpdir/s"
	grep "^worst $d " "$RES" | cut -d' ' -f3 >"$tmpdir/w"
	printf '%-16s %6s %13ss %13ss %14ss %14ss\n' "$d s" "$(wc -l <"$tmpdir/s")" "$(pct 50 <"$tmpdir/s")" \
		"$(pct 99 <"$tmpdir/s")" "$(pct 50 <"$tmpdir/w")" "$(pct 99 <"$tmpdir/w")"
done
echo "(stall: from a PC's first failed write or flush to its next acknowledged write; kill worst: the"
echo " last of a kill's PCs to resume; p99 of $KILLS kills is their maximum)"
