# bench/lib.sh - what the scripts of `make bench` share; sourced, bash.
# Sourcing it only defines functions and BENCH_AWK_MEDIAN.
#
#   . bench/lib.sh; bench_init NAME
# goes to the top of the tree and sets BUILD (default build), PRISTINED,
# BENCH (the load generator) and PIN (BENCH_PIN, default 1); refuses to go
# on unless both programs are built; makes a scratch directory $dir
# (/tmp/pristine-NAME.XXXXXX) removed at exit together with the daemon
# whose pid is in $pid, after calling bench_cleanup_more if the script
# defines it.  srv_pin / cli_pin print the taskset prefix that puts the
# daemon on CPU 1 and a client on CPU 0 (nothing with BENCH_PIN=0).
# bench_start BIN PORT IMAGE [ARGS...] starts BIN in quick mode on a fresh
# $dir/state (its log in $dir/d.log, its pid in $pid) and waits until it
# listens; bench_stop stops it.

bench_init() {
	local name=$1 f
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	BUILD=${BUILD:-build}
	PRISTINED=$BUILD/pristined
	BENCH=$BUILD/bench/iscsi_bench
	PIN=${BENCH_PIN:-1}
	for f in "$PRISTINED" "$BENCH"; do
		[ -x "$f" ] || { echo "$name.sh: $f is not built (make bench-build)" >&2; exit 1; }
	done
	dir=$(mktemp -d "/tmp/pristine-$name.XXXXXX")
	pid=
	trap bench_cleanup EXIT
}

bench_cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	declare -F bench_cleanup_more >/dev/null && bench_cleanup_more
	rm -rf "$dir"
}

srv_pin() { [ "$PIN" = 1 ] && echo "taskset -c 1"; true; }
cli_pin() { [ "$PIN" = 1 ] && echo "taskset -c 0"; true; }

bench_start() {
	local bin=$1 port=$2 image=$3
	shift 3
	rm -rf "$dir/state"
	: >"$dir/d.log"
	$(srv_pin) "$bin" --image "$image" --listen "127.0.0.1:$port" --state "$dir/state" \
		--nop-interval 0 "$@" 2>"$dir/d.log" &
	pid=$!
	for _ in $(seq 100); do
		grep -q "listening on" "$dir/d.log" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "bench: daemon $bin died:" >&2; cat "$dir/d.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "bench: daemon $bin did not start" >&2
	exit 1
}

bench_stop() {
	kill "$pid" && wait "$pid" 2>/dev/null || true
	pid=
}

# Median of the numbers on stdin, one a line.
bench_median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# bench_pin_cpus: PIN_D and PIN_C, the taskset prefixes (arrays) that put
# the daemon on the last CPU and the load generator on the first, and
# DCPU, the daemon's CPU; all empty with BENCH_PIN=0, without taskset or
# with one CPU.  Why: with 2 CPUs shared by client and server, where the
# scheduler happened to put the two threads swung 4 KiB QD32 reads between
# ~80k and ~170k IOPS from run to run; pinned, runs are comparable.
bench_pin_cpus() {
	PIN_D=() PIN_C=() DCPU=""
	if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
		DCPU=$(( $(nproc) - 1 ))
		PIN_D=(taskset -c "$DCPU")
		PIN_C=(taskset -c 0)
	fi
}

# bench_need_tgt NAME: exits (NAME.sh: why) unless tgtd and tgtadm are
# installed and this runs as root; the caller then sources bench/tgt.sh.
bench_need_tgt() {
	command -v tgtd >/dev/null && command -v tgtadm >/dev/null || {
		echo "$1.sh: tgtd/tgtadm missing: 'make bench' installs tgt (bench/deps.sh); BENCH_TGT=0 runs without it" >&2
		exit 1
	}
	[ "$(id -u)" -eq 0 ] || { echo "$1.sh: tgtd needs root (BENCH_TGT=0 runs without tgt)" >&2; exit 1; }
}

# bench_kill PID: stops a process this script started: TERM, up to 10 s
# for it to end, then KILL; reaps it.  Never fails.
bench_kill() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# bench_stop_target: stops the target whose pid is in DPID, if any: tgtd
# (DKIND tgt) by bench/tgt.sh's tgt_stop on control port TGT_CTL with its
# files in TMP, any other by bench_kill; clears DPID and DKIND.
bench_stop_target() {
	[ -n "$DPID" ] || return 0
	if [ "$DKIND" = tgt ]; then
		tgt_stop --control "$TGT_CTL" --dir "$TMP"
	else
		bench_kill "$DPID"
	fi
	DPID="" DKIND=""
}

# bench_scratch_done DIR: the scratch directory kept (BENCH_KEEP=1, said on
# stdout) or removed.
bench_scratch_done() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "scratch kept in $1"
	else
		rm -rf "$1"
	fi
}

# An awk function to put before a program: median(LIST), the median of the
# numbers in the blank-separated LIST, "" for an empty one.
BENCH_AWK_MEDIAN='
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (n == 0) return ""
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}'

# bench_bootset CTL STATE IMAGE FIELD: the boot_set.FIELD of IMAGE's
# current version (lab/bootsets.h) as pristinectl CTL of the daemon on
# STATE shows it; "" when there is none (or no daemon).
bench_bootset() {
	"$1" --state "$2" --json image versions "$3" 2>/dev/null |
		jq -r "[.. | objects | select(.current == true and has(\"boot_set\"))][0].boot_set.$4 // empty" 2>/dev/null || true
}

# bench_disk_of FILE: MAJ:MIN of the whole disk FILE lives on (blkio
# throttles whole disks, not partitions).
bench_disk_of() {
	local d mm
	d=$(stat -c %d "$1")
	mm="$(( (d >> 8) & 0xfff )):$(( (d & 0xff) | ((d >> 12) & 0xfff00) ))"
	[ ! -e "/sys/dev/block/$mm/partition" ] || mm=$(cat "$(readlink -f "/sys/dev/block/$mm")/../dev")
	echo "$mm"
}

# The slow-disk MODEL of issue 18's cold benches: a cgroup v1 blkio group
# (under CG_ROOT, default /sys/fs/cgroup/blkio) whose processes' reads of
# FILE's disk are throttled.  bench_blkio_make FILE IOPS BPS NAME sets CG
# to the group (NAME.PID) and prints what it models; a process joins by
# writing its PID to "$CG/cgroup.procs".  bench_blkio_remove moves every
# process still in CG back to the root and removes it (CG "" after).
bench_blkio_make() {
	local mm
	mm=$(bench_disk_of "$1")
	CG=${CG_ROOT:-/sys/fs/cgroup/blkio}/$4.$$
	mkdir -p "$CG"
	echo "$mm $2" >"$CG/blkio.throttle.read_iops_device"
	echo "$mm $3" >"$CG/blkio.throttle.read_bps_device"
	echo "   slow-disk MODEL: cgroup v1 blkio $CG, reads of $mm throttled to $2/s and $3 B/s" \
	     "($(sed -n 's/^DEVNAME=//p' "/sys/dev/block/$mm/uevent" 2>/dev/null))"
}
bench_blkio_remove() {
	local p
	[ -n "${CG:-}" ] && [ -d "$CG" ] || return 0
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do
		echo "$p" >"${CG_ROOT:-/sys/fs/cgroup/blkio}/cgroup.procs" 2>/dev/null || true
	done
	rmdir "$CG" 2>/dev/null || echo "bench: could not remove $CG" >&2
	CG=""
}

# bench_drop_caches: dirty pages written, then the page cache dropped (root).
bench_drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
