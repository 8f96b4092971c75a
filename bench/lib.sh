# bench/lib.sh - what the phase scripts of `make bench` (datain.sh,
# fairness.sh, memory.sh) share; sourced, bash.
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
