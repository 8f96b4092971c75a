# tests/lib/qemu.sh - for tests that run a QEMU guest (source after common.sh).
# Set QPID to the guest's PID; kill_qemu stops it (TERM, then KILL) and
# reaps it.  Installs an EXIT trap that also runs common.sh's cleanup.
QPID=""
kill_qemu() {
	if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
		kill -TERM "$QPID" 2>/dev/null
		for _ in $(seq 1 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$QPID" 2>/dev/null
	fi
	[ -n "$QPID" ] && wait "$QPID" 2>/dev/null
	QPID=""
}
trap 'kill_qemu; cleanup_common' EXIT
trap 'exit 143' TERM INT
