# tests/lib/images.sh - helpers for the image/version tests (source after
# common.sh; needs $STATE set to the daemon's state directory).
#
#   ctl ARGS...                pristinectl --state $STATE ARGS (bounded)
#   ctl_ok ARGS...             ctl, fail unless it exits 0; output in $OUT
#   ctl_err CODE REGEX ARGS... ctl, fail unless it exits CODE and its
#                              stderr matches REGEX (grep -E -i)
#   vjson NAME JQ              jq expression over `image versions NAME --json`
#   dump INI FILE [TARGET]     the whole disk as initiator INI sees it on
#                              TARGET (default $GTARGET), with qemu-img
#   same INI REF [TARGET]      fail unless INI reads exactly the file REF
#   qio INI ARGS...            qemu-io on TARGET $GTARGET as INI; fails on
#                              an error or a pattern mismatch (qemu-io
#                              itself exits 0 on those)
CTL=${PRISTINECTL:-$BUILD/pristinectl}

ctl() { timeout 120 "$CTL" --state "$STATE" "$@"; }

ctl_ok() {
	local rc=0
	OUT=$(ctl "$@" 2>"$tmpdir/ctl.err") || rc=$?
	[ "$rc" -eq 0 ] || { cat "$tmpdir/ctl.err"; echo "$OUT"; fail "pristinectl $* exited $rc"; }
	echo "\$ pristinectl $*"
	[ -z "$OUT" ] || echo "$OUT" | sed 's/^/    /'
}

ctl_err() {
	local want=$1 re=$2 rc=0 out
	shift 2
	out=$(ctl "$@" 2>&1) || rc=$?
	echo "\$ pristinectl $*  -> $rc: $out"
	[ "$rc" -eq "$want" ] || fail "pristinectl $* exited $rc, expected $want: $out"
	echo "$out" | grep -E -i -q -- "$re" || fail "pristinectl $*: message '$out' does not match /$re/"
}

vjson() { ctl --json image versions "$1" | jq -r "$2"; }

dump() {
	local tgt=${3:-$GTARGET}
	rm -f "$2"
	timeout -k 5 120 qemu-img convert --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$tgt,lun=0,initiator-name=$1" \
		-O raw "$2" >"$tmpdir/dump.log" 2>&1 || { cat "$tmpdir/dump.log"; fail "qemu-img read of $tgt as $1 failed"; }
}

same() {
	dump "$1" "$tmpdir/seen.raw" "${3:-}"
	cmp "$tmpdir/seen.raw" "$2" || fail "$1 does not read $(basename "$2") on ${3:-$GTARGET}"
	echo "    ok: $1 reads $(basename "$2")"
}

qio() {
	local ini=$1 out
	shift
	out=$(timeout -k 5 60 qemu-io "$@" --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$GTARGET,lun=0,initiator-name=$ini" 2>&1) \
		|| { echo "$out"; fail "qemu-io $* as $ini failed"; }
	if echo "$out" | grep -E -i -q 'fail|error|cannot'; then
		echo "$out"; fail "qemu-io $* as $ini: an error or pattern mismatch"
	fi
	QIO_OUT=$out
}

# patch FILE OFFSET LEN BYTE: overwrite LEN bytes of FILE at OFFSET with BYTE.
patch() {
	python3 - "$@" <<'PY'
import sys
path, off, n, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
with open(path, "r+b") as f:
    f.seek(off); f.write(bytes([b]) * n)
PY
}
