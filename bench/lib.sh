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
