#!/usr/bin/env bash
# tests/control/test_ctl.sh - pristinectl against a live pristined: status,
# client list/show/reset (refused while online unless --force), client
# add/set/remove (duplicates and unknown images refused, remove refused
# while online unless --force), session list/kill, --json output, error
# exit codes (1 daemon error, 2 usage, 3 no daemon).  Builds nothing: needs build/pristinectl and the
# sanitizer daemon (make all asan).
. "$(dirname "$0")/../lib/common.sh"

CTL=$BUILD/pristinectl
[ -x "$CTL" ] || skip "build/pristinectl not built (make)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
command -v iscsi-inq >/dev/null || skip "iscsi-inq not installed (libiscsi-bin)"

HOLDERS=()
cleanup_ctl() {
	for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
	cleanup_common
}
trap cleanup_ctl EXIT

STATE=$tmpdir/state
OUT=$tmpdir/out
ERR=$tmpdir/err

# ctl EXPECTED_RC ARGS...: run pristinectl, keep stdout/stderr in $OUT/$ERR.
ctl() {
	local want=$1 rc=0
	shift
	"$CTL" "$@" >"$OUT" 2>"$ERR" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "--- stdout"; cat "$OUT"; echo "--- stderr"; cat "$ERR"
		fail "pristinectl $* exited $rc, wanted $want"
	fi
}
out_has() { grep -q -- "$1" "$OUT" || { cat "$OUT"; fail "stdout lacks '$1'"; }; }
err_has() { grep -q -i -- "$1" "$ERR" || { cat "$ERR"; fail "stderr lacks '$1'"; }; }
json_ok() { python3 -m json.tool "$OUT" >/dev/null || { cat "$OUT"; fail "--json output is not JSON"; }; }

# hold IQN: keep one iSCSI session of initiator IQN open in the background.
cat >"$tmpdir/hold.py" <<PY
import sys, time
sys.path.insert(0, "$TOP/tests/lib")
import iscsi_initiator as I
s = I.Session("127.0.0.1", int(sys.argv[1]), initiator_name=sys.argv[2], target_name=sys.argv[3])
s.login()
print("ready", flush=True)
time.sleep(120)
PY
hold() {
	local log=$tmpdir/hold.$#.$RANDOM
	python3 "$tmpdir/hold.py" "$PORT" "$1" "$TARGET" >"$log" 2>&1 &
	HOLDERS+=($!)
	wait_ready "$log" "could not hold a session for $1"
}

# --- no daemon: exit 3, naming the socket
ctl 3 --state "$tmpdir/nowhere" status
err_has "$tmpdir/nowhere/pristined.sock"
err_has "not be running"
ctl 3 --socket "$tmpdir/nowhere.sock" client list

# --- usage errors: exit 2, before any connection
ctl 2 frobnicate
ctl 2 image frobnicate
err_has "unknown image verb"
ctl 2 image commit gold
err_has "-m MESSAGE"
ctl 2 image rollback gold vx
err_has "VERSION must be a number"
ctl 2 image edit gold
err_has "--client"
ctl 2 image list --client x
err_has "--client does not go with image list"
ctl 2 pxe show
err_has "unknown pxe verb"
ctl 2 client add iqn.2024-01.test.ctl:x --format qcow2
err_has "--format does not go with client add"
ctl 2 client set pc1 --proxy
err_has "--proxy does not go with client set"
ctl 2 --state "$tmpdir/nowhere" client add iqn.2024-01.test.ctl:x --quota 20X
err_has "--quota"
ctl 2 --state "$tmpdir/nowhere" client add
ctl 2 --state "$tmpdir/nowhere" client set pc1
err_has "at least one of"
ctl 2 --state "$tmpdir/nowhere" client remove pc1 --quota 1G
ctl 2 --state "$tmpdir/nowhere" client show pc1 --force
ctl 2 --state "$tmpdir/nowhere" client add iqn.2024-01.test.ctl:x --name
ctl 2 client reset
ctl 2 session kill notanumber
# numbers are read with util/parse's rule: no blank, no sign
ctl 2 session kill " 3"
ctl 2 session kill +3
ctl 2 job show +3
ctl 2 image rollback g " 2"
ctl 2 --bogus status
ctl 0 --help
out_has "client reset ID"
out_has "client add IQN"
out_has "image edit NAME --client C"
grep -q "Not available yet:.*\(client\|image\)" "$OUT" && fail "--help still says client or image verbs are not available"
ctl 0 --version
out_has "pristinectl 0.1.0"

# --- a daemon
make_image "$tmpdir/disk.img" 8
mkdir -p "$STATE"
start_daemon --image "$tmpdir/disk.img" --state "$STATE" --nop-interval 0
for _ in $(seq 1 50); do [ -S "$STATE/pristined.sock" ] && break; sleep 0.1; done
[ -S "$STATE/pristined.sock" ] || { cat "$DLOG"; fail "no admin socket in $STATE"; }

ctl 0 --state "$STATE" status
out_has "pristined"
out_has "$TARGET"
ctl 0 --state "$STATE" --json status
json_ok
ctl 0 --socket "$STATE/pristined.sock" status

# --- a client appears after a login
PC1=iqn.2024-01.test.ctl:pc1
iscsi-inq -i "$PC1" "iscsi://127.0.0.1:$PORT/$TARGET/0" >/dev/null 2>&1 ||
	fail "iscsi-inq login as $PC1 failed"
ctl 0 --state "$STATE" client list
out_has "NAME/INITIATOR"
out_has "$PC1"
out_has "offline"
ctl 0 --state "$STATE" client list --json
json_ok
python3 - "$OUT" "$PC1" <<'PY' || fail "client list --json lacks the client"
import json, sys
d = json.load(open(sys.argv[1]))
assert any(c["initiator"] == sys.argv[2] for c in d["clients"]), d
PY
ctl 0 --state "$STATE" client show "$PC1"
out_has "initiator: *$PC1"

# --- reset: refused while online, done with --force or when offline
hold "$PC1"
ctl 0 --state "$STATE" client list
out_has "online"
ctl 0 --state "$STATE" session list
out_has "TSIH"
out_has "$PC1"
ctl 1 --state "$STATE" client reset "$PC1"
err_has "--force"
ctl 0 --state "$STATE" client reset "$PC1" --force
out_has "reset"
ctl 0 --state "$STATE" --json client reset "$PC1" --force
json_ok

# --- unknown client / session: exit 1 with the daemon's message
ctl 1 --state "$STATE" client show nobody.here
err_has "nobody.here"
ctl 1 --state "$STATE" client reset nobody.here --force
err_has "nobody.here"
ctl 1 --state "$STATE" session kill 65535

# --- session kill
PC2=iqn.2024-01.test.ctl:pc2
hold "$PC2"
ctl 0 --state "$STATE" --json session list
json_ok
TSIH=$(python3 - "$OUT" "$PC2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print([s["tsih"] for s in d["sessions"] if s["initiator"] == sys.argv[2]][0])
PY
) || fail "no session of $PC2 in session list --json"
ctl 0 --state "$STATE" session kill "$TSIH"
ctl 0 --state "$STATE" session list
grep -q "$PC2" "$OUT" && { cat "$OUT"; fail "session $TSIH still listed after kill"; }

# --- client add / set / remove
# in_list PATTERN: client list has a line matching the extended regex.
in_list() { ctl 0 --state "$STATE" client list; grep -q -E -- "$1" "$OUT"; }
PC3=iqn.2024-01.test.ctl:pc3
ctl 0 --state "$STATE" client add "$PC3" --name pc3 --quota 20G
out_has "client pc3 added (image .*, quota 20.0 GiB)"
in_list "^pc3 .* 20\.0 GiB +offline" || { cat "$OUT"; fail "pc3 not listed with its quota"; }
ctl 0 --state "$STATE" --json client list
python3 - "$OUT" "$PC3" <<'PY' || fail "client list --json: pc3 lacks name or quota"
import json, sys
d = json.load(open(sys.argv[1]))
c = [c for c in d["clients"] if c["initiator"] == sys.argv[2]][0]
assert c["name"] == "pc3" and c["quota_bytes"] == 20 << 30, c
PY
# duplicates: the same initiator, or the same name
ctl 1 --state "$STATE" client add "$PC3"
err_has "already"
ctl 1 --state "$STATE" client add iqn.2024-01.test.ctl:other --name pc3
err_has "already"
# an unknown image: refused, nothing added
ctl 1 --state "$STATE" client add iqn.2024-01.test.ctl:pc4 --image nosuchimage
err_has "no image nosuchimage"
in_list "pc4" && fail "a client with an unknown image was added"
# set
ctl 0 --state "$STATE" client set pc3 --quota 30G
out_has "client pc3: quota 30.0 GiB"
ctl 0 --state "$STATE" client show "$PC3"
out_has "quota: *30.0 GiB"
ctl 0 --state "$STATE" --json client set "$PC3" --quota 512M
json_ok
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["quota_bytes"] == 512 << 20' "$OUT" ||
	fail "client set --json: quota_bytes is not 512 MiB"
ctl 1 --state "$STATE" client set pc3 --image nosuchimage
err_has "no image nosuchimage"
ctl 1 --state "$STATE" client set nobody.here --quota 1G
err_has "nobody.here"
# remove: refused while online, done with --force
hold "$PC3"
in_list "^pc3 .* online" || { cat "$OUT"; fail "pc3 not online while held"; }
ctl 1 --state "$STATE" client remove pc3
err_has "--force"
in_list "^pc3 " || fail "pc3 gone after a refused remove"
ctl 0 --state "$STATE" client remove pc3 --force
out_has "client pc3 removed"
in_list "$PC3|^pc3 " && { cat "$OUT"; fail "pc3 still listed after remove --force"; }
# remove: offline, no --force needed; a rename on the way
PC5=iqn.2024-01.test.ctl:pc5
ctl 0 --state "$STATE" client add "$PC5"
out_has "client $PC5 added"
ctl 0 --state "$STATE" client set "$PC5" --name pc5b
out_has "client $PC5: name pc5b"
ctl 0 --state "$STATE" --json client remove pc5b
json_ok
out_has '"removed"'
in_list "$PC5|^pc5b " && { cat "$OUT"; fail "pc5b still listed after remove"; }
ctl 1 --state "$STATE" client remove pc5b
err_has "pc5b"
# a removed client that logs in again is enrolled again (enroll is auto here)
iscsi-inq -i "$PC5" "iscsi://127.0.0.1:$PORT/$TARGET/0" >/dev/null 2>&1 ||
	fail "iscsi-inq login as $PC5 after its removal failed"
in_list "$PC5" || { cat "$OUT"; fail "$PC5 not enrolled again after logging in"; }

daemon_alive
stop_daemon
[ -e "$STATE/pristined.sock" ] && fail "socket file left behind after shutdown"
ctl 3 --state "$STATE" status
echo "ok"
