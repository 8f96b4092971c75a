# tests/lib/common.sh - helpers for tests that drive a live pristined.
# Source it from a test script:  . "$(dirname "$0")/../lib/common.sh"
#
# Provides:
#   TOP, BUILD, PRISTINED (sanitizer build unless PRISTINED is set)
#   tmpdir                 a per-test scratch directory, removed on exit
#   free_port              prints a free TCP port on 127.0.0.1
#   make_image FILE MIB    a raw image with a recognisable pattern
#   start_daemon ARGS...   starts $PRISTINED in the background on a free
#                          port; sets DPID, PORT, TARGET (printed IQN), DLOG
#   stop_daemon            SIGTERM, waits, fails on sanitizer reports or a
#                          bad exit status
#   fail MSG / skip MSG    end the test
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TOP
BUILD=${BUILD:-$TOP/build}
PRISTINED=${PRISTINED:-$BUILD/asan/pristined}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=67}
tmpdir=$(mktemp -d /tmp/pristine-test.XXXXXX)
DPID=""

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "$*"; exit 77; }

cleanup_common() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null
	fi
	rm -rf "$tmpdir"
}
trap cleanup_common EXIT

free_port() {
	python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# make_image FILE MIB: every 512-byte sector starts with its LBA as text,
# the rest is pseudo-random, so misplaced reads are caught.
make_image() {
	python3 - "$1" "$2" <<'PY'
import sys, random
path, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
with open(path, "wb") as f:
    for lba in range(mib * 2048):
        head = b"LBA%012d" % lba
        f.write(head + rnd.randbytes(512 - len(head)))
PY
}

# start_daemon ARGS...: extra arguments are passed to pristined.
start_daemon() {
	PORT=$(free_port)
	DLOG=$tmpdir/pristined.log
	"$PRISTINED" --listen "127.0.0.1:$PORT" "$@" >"$DLOG" 2>&1 &
	DPID=$!
	for _ in $(seq 1 100); do
		if grep -q 'listening' "$DLOG" 2>/dev/null; then
			TARGET=$(sed -n 's/.*target \(iqn[^ ]*\).*/\1/p' "$DLOG" | head -n 1)
			return 0
		fi
		kill -0 "$DPID" 2>/dev/null || { cat "$DLOG"; fail "pristined exited at start"; }
		sleep 0.1
	done
	cat "$DLOG"; fail "pristined did not start listening"
}

# start_daemon_conf FILE: pristined -c FILE, its log appended to DLOG
# (default $tmpdir/pristined.log, so a restart keeps the earlier lines);
# returns once THIS start has printed 'listening'.
start_daemon_conf() {
	local before
	DLOG=${DLOG:-$tmpdir/pristined.log}
	before=$(grep -c listening "$DLOG" 2>/dev/null) || before=${before:-0}
	"$PRISTINED" -c "$1" >>"$DLOG" 2>&1 &
	DPID=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c listening "$DLOG")" -gt "$before" ] && return 0
		kill -0 "$DPID" 2>/dev/null || { cat "$DLOG"; fail "pristined -c $1 exited at start"; }
		sleep 0.1
	done
	cat "$DLOG"; fail "pristined -c $1 did not start listening"
}

# wait_ready LOG WHY: at most 10 s for a helper started in the background
# (a session holder...) to write "ready" into LOG; fails with LOG and WHY
# otherwise.
wait_ready() {
	for _ in $(seq 1 100); do
		grep -q ready "$1" && return 0
		sleep 0.1
	done
	cat "$1"; fail "$2"
}

# wait_boot_endpoint [URL]: at most 5 s for the daemon's log to say it
# serves the boot endpoint (at URL); fails with the log otherwise.
wait_boot_endpoint() {
	for _ in $(seq 1 50); do
		grep -q "boot endpoint on${1:+ $1}" "$DLOG" && return 0
		sleep 0.1
	done
	cat "$DLOG"; fail "no boot endpoint${1:+ on $1}"
}

stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	local rc=0
	wait "$DPID" || rc=$?
	DPID=""
	if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DLOG"; then
		cat "$DLOG"; fail "sanitizer report in pristined log"
	fi
	[ "$rc" -eq 0 ] || { tail -n 40 "$DLOG"; fail "pristined exited with status $rc"; }
}

# daemon_alive: fail unless the daemon is still running.
daemon_alive() {
	kill -0 "$DPID" 2>/dev/null || { tail -n 40 "$DLOG"; fail "pristined died"; }
}
