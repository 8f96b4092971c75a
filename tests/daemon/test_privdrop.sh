#!/usr/bin/env bash
# pristined --user NAME (issue 7): root only to start, then NAME with no
# capabilities; the admin socket root-only in two layers.
#
# As root, with a system user created for the test (removed at the end if
# the test created it), a golden image that the user cannot read, a
# fresh state directory and the boot endpoint on a port below 1024:
#   - after the start every thread of the daemon runs as the user (Uid and
#     Gid lines), with no capability in any set (CapInh, CapPrm, CapEff,
#     CapBnd, CapAmb all 0) and NoNewPrivs 1;
#   - READY=1 reaches a NOTIFY_SOCKET played by the test, sent by the
#     daemon's PID with the user's uid (so after the drop);
#   - the state directory (made by root at start) was handed over to the
#     user; the admin socket is root's with mode 0600;
#   - a libiscsi client (qemu-io) writes a pattern and reads it back in a
#     new session; the boot endpoint on 127.0.0.1:81 (or the next free port
#     below 100) answers GET /boot.ipxe, and enrolls a PC by MAC;
#   - pristinectl as root: status, client list, client reset (the pattern
#     is gone afterwards);
#   - pristinectl as the user is refused: by the socket's mode (exit 3,
#     "root-only"), and, with the socket made 0666 by the test so that only
#     the second layer stands, by the daemon's SO_PEERCRED check (exit 1,
#     "refused", logged with the uid);
#   - image export (a qemu-img child, as the user) into a directory of the
#     user's gives the golden image's content; image import of a qcow2 the
#     user can read works, of one only root can read fails with a message;
#   - restart as systemd/pristined.service would start it: only the
#     unit's CapabilityBoundingSet (read from the unit, applied with
#     setpriv), no_new_privs, the user from PRISTINED_USER; the state is the
#     user's now and the image a third user's 0600 file, and still: it
#     drops, root-owned entries put in the state meanwhile are handed over,
#     a symlink to a root file is not followed, the client's data is still
#     there, the boot endpoint answers on its port below 1024;
#   - refusals at start, the daemon never serving: a state entry owned by a
#     third user, a root file with two hard links, an unknown user;
#   - `user =` in a configuration file drops the same way;
#   - the golden image is unchanged.
# Exit 0 pass, 77 skip (not root, tools missing, no free port < 1024).
. "$(dirname "$0")/../lib/common.sh"

T=30	# seconds for each client command and each wait

[ "$(id -u)" = 0 ] || skip "needs root (a test user, a port below 1024, dropping root)"
for tool in useradd userdel runuser setpriv qemu-io qemu-img curl sha256sum python3 stat; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
CTL=$BUILD/pristinectl
[ -x "$CTL" ] || skip "$CTL not built (make)"

U=pristine-test
created_user=0
NPID=""
cleanup() {
	[ -n "$NPID" ] && kill "$NPID" 2>/dev/null
	cleanup_common
	if [ "$created_user" = 1 ]; then
		# userdel refuses while a process of the user runs (a killed daemon).
		for _ in $(seq 1 50); do pgrep -u "$U" >/dev/null || break; sleep 0.1; done
		userdel "$U" 2>/dev/null || echo "note: userdel $U failed"
	fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT	# so that the EXIT trap runs under run.sh's timeout
if ! id "$U" >/dev/null 2>&1; then
	if useradd --system --no-create-home --shell /usr/sbin/nologin "$U"; then
		created_user=1
	else
		id "$U" >/dev/null 2>&1 || fail "useradd $U failed"
	fi
fi
UID_U=$(id -u "$U"); GID_U=$(id -g "$U")
echo "test user $U: uid $UID_U gid $GID_U"

# The user must be able to reach the state directory below $tmpdir (0700).
chmod 0711 "$tmpdir"
# pristinectl run as the user: a copy it can execute wherever the tree is.
install -m 0755 "$CTL" "$tmpdir/pristinectl"
UCTL=$tmpdir/pristinectl

# A free port below 1024 on 127.0.0.1 for the boot endpoint.
BPORT=$(python3 - <<'PY'
import socket
for p in [81] + list(range(82, 100)):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
PY
)
[ -n "$BPORT" ] || skip "no free port from 81 to 99 on 127.0.0.1"

img=$tmpdir/golden.raw
make_image "$img" 16
# Neither root's nor the user's, mode 0600: images are opened before the
# drop (and, in the unit, thanks to CAP_DAC_OVERRIDE).
chown 65534:65534 "$img"; chmod 0600 "$img"
sum0=$(sha256sum <"$img")
state=$tmpdir/state

out=$tmpdir/out.txt
run() {	# run SECS CMD...: bounded, output in $out
	local secs=$1; shift
	timeout -k 5 "$secs" "$@" >"$out" 2>&1
}
show() { sed 's/^/    | /' "$out"; }

# wait_dropped: the daemon logged its drop (or died: fail).
wait_dropped() {
	for _ in $(seq 1 $((T * 10))); do
		grep -q 'running as user' "$DLOG" && return 0
		kill -0 "$DPID" 2>/dev/null || { cat "$DLOG"; fail "pristined exited at start"; }
		sleep 0.1
	done
	cat "$DLOG"; fail "pristined did not drop root within ${T}s"
}

# check_dropped PID: every thread runs as the user with nothing left.
check_dropped() {
	local pid=$1 n=0 t
	for t in /proc/"$pid"/task/*; do
		[ -r "$t/status" ] || continue
		n=$((n + 1))
		awk -v u="$UID_U" -v g="$GID_U" -v t="$t" '
			/^Uid:/ { if ($2 != u || $3 != u || $4 != u || $5 != u) { print t ": " $0; bad = 1 } ; seen["Uid"] = 1 }
			/^Gid:/ { if ($2 != g || $3 != g || $4 != g || $5 != g) { print t ": " $0; bad = 1 } ; seen["Gid"] = 1 }
			/^Cap(Inh|Prm|Eff|Bnd|Amb):/ { k = $1; sub(":", "", k); seen[k] = 1
				if ($2 !~ /^0+$/) { print t ": " $0; bad = 1 } }
			/^NoNewPrivs:/ { seen["NoNewPrivs"] = 1; if ($2 != 1) { print t ": " $0; bad = 1 } }
			END { split("Uid Gid CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs", want, " ")
				for (i in want) if (!(want[i] in seen)) { print t ": no " want[i] " line"; bad = 1 }
				exit bad }' "$t/status" || fail "thread $t of pristined kept privileges"
	done
	[ "$n" -ge 2 ] || fail "only $n thread(s) seen in /proc/$pid/task"
	echo "  $n threads: uid $UID_U gid $GID_U, no capabilities, NoNewPrivs 1"
}

owner() { stat -c '%U' "$1"; }

# ------------------------------------------------ start with --user, READY
notify=$tmpdir/notify
mkdir -m 0755 "$notify"
python3 - "$notify/sock" "$notify/got" "$T" <<'PY' &
import os, socket, struct, sys
path, got, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)          # like systemd's /run/systemd/notify
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.settimeout(secs)
try:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = uid = -1
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid, uid, _ = struct.unpack("iII", data[:12])
        with open(got, "a") as f:
            f.write("pid=%d uid=%d %s\n" % (pid, uid, msg.decode(errors="replace").replace("\n", " ")))
        if b"READY=1" in msg:
            break
except socket.timeout:
    pass
PY
NPID=$!
for _ in $(seq 1 50); do [ -S "$notify/sock" ] && break; sleep 0.1; done
[ -S "$notify/sock" ] || fail "the test's notify socket did not appear"

echo "== start: --user $U, boot endpoint on 127.0.0.1:$BPORT"
NOTIFY_SOCKET=$notify/sock start_daemon --image "$img" --state "$state" --user "$U" \
	--boot-listen "127.0.0.1:$BPORT"
wait_dropped
grep 'running as user\|handed over' "$DLOG" | sed 's/^/    /'
check_dropped "$DPID"

for _ in $(seq 1 $((T * 10))); do grep -q READY=1 "$notify/got" 2>/dev/null && break; sleep 0.1; done
grep -q READY=1 "$notify/got" 2>/dev/null || fail "no READY=1 on NOTIFY_SOCKET"
sed 's/^/    notify: /' "$notify/got"
grep -q "^pid=$DPID uid=$UID_U .*READY=1" "$notify/got" \
	|| fail "READY=1 did not come from pid $DPID with uid $UID_U (sent before the drop?)"
wait "$NPID" 2>/dev/null; NPID=""

[ "$(owner "$state")" = "$U" ] || fail "state directory owned by $(owner "$state"), not $U"
bad=$(find "$state" ! -user "$U" ! -type s)
[ -z "$bad" ] || fail "not handed over: $bad"
[ "$(stat -c '%U %a' "$state/pristined.sock")" = "root 600" ] \
	|| fail "admin socket is $(stat -c '%U %a' "$state/pristined.sock"), expected root 600"
echo "  state is $U's; admin socket root 600"

# -------------------------------------------------------- iSCSI, boot, ctl
url="iscsi://127.0.0.1:$PORT/$TARGET/0"
echo "== iSCSI write and read back ($url)"
run $T qemu-io -f raw -c "write -P 0x5a 1M 256k" "$url" || { show; fail "qemu-io write failed"; }
grep -q "wrote 262144/262144" "$out" || { show; fail "qemu-io did not write"; }
run $T qemu-io -f raw -r -c "read -P 0x5a 1M 256k" "$url" || { show; fail "qemu-io read failed"; }
grep -q "read 262144/262144" "$out" && ! grep -q "Pattern verification failed" "$out" \
	|| { show; fail "the written pattern did not read back"; }
bad=$(find "$state/overlays" ! -user "$U")
[ -z "$bad" ] || fail "overlay files not $U's: $bad"
echo "  written and read back; the overlay is $U's"

echo "== boot endpoint on privileged port $BPORT"
run $T curl -sS -m $T "http://127.0.0.1:$BPORT/boot.ipxe" || { show; fail "GET /boot.ipxe failed"; }
head -n 1 "$out" | grep -q '^#!ipxe' || { show; fail "GET /boot.ipxe did not answer an iPXE script"; }
run $T curl -sS -m $T "http://127.0.0.1:$BPORT/boot.ipxe?mac=52-54-00-aa-bb-01&uuid=&ip=127.0.0.1" \
	|| { show; fail "GET /boot.ipxe?mac= failed"; }
grep -q sanboot "$out" || { show; fail "the PC was not enrolled (no sanboot in its script)"; }
echo "  answers; a PC enrolled by MAC"

echo "== pristinectl as root"
run $T "$CTL" --state "$state" status || { show; fail "pristinectl status failed as root"; }
show
run $T "$CTL" --state "$state" --json client list || { show; fail "client list failed as root"; }
iqn=$(python3 -c '
import json, sys
cl = json.load(open(sys.argv[1]))["clients"]
print(next(c["initiator"] for c in cl if "kvm" in c["initiator"] or "qemu" in c["initiator"]))' "$out") \
	|| { show; fail "the qemu-io client is not in client list"; }
echo "  client $iqn listed"
run $T "$CTL" --state "$state" client reset "$iqn" || { show; fail "client reset failed as root"; }
run $T qemu-io -f raw -r -c "read -P 0x5a 1M 4k" "$url"	# exits 1 on a pattern mismatch
grep -q "read 4096/4096" "$out" || { show; fail "qemu-io read after reset failed"; }
grep -q "Pattern verification failed" "$out" || { show; fail "the pattern survived client reset"; }
echo "  client reset: the overlay is gone"
run $T qemu-io -f raw -c "write -P 0x6b 2M 64k" "$url" || { show; fail "qemu-io write (2) failed"; }

echo "== pristinectl as $U: refused by the socket's mode"
rc=0; timeout -k 5 $T runuser -u "$U" -- "$UCTL" --state "$state" status >"$out" 2>&1 || rc=$?
show
[ "$rc" = 3 ] || fail "pristinectl as $U: exit $rc, expected 3 (unreachable)"
grep -q "root-only" "$out" || fail "no clear 'root-only' message"

echo "== pristinectl as $U with the socket made 0666: refused by SO_PEERCRED"
chmod 0666 "$state/pristined.sock"
for verb in "status" "client list" "client reset $iqn"; do
	rc=0; timeout -k 5 $T runuser -u "$U" -- "$UCTL" --state "$state" $verb >"$out" 2>&1 || rc=$?
	show
	[ "$rc" = 1 ] || fail "pristinectl $verb as $U: exit $rc, expected 1 (refused)"
	grep -q "refused.*root" "$out" || fail "no clear refusal for $verb"
done
grep -q "api: refused a request from uid $UID_U" "$DLOG" || fail "the refusal was not logged"
chmod 0600 "$state/pristined.sock"
run $T qemu-io -f raw -r -c "read -P 0x6b 2M 64k" "$url" || { show; fail "qemu-io read (2) failed"; }
grep -q "Pattern verification failed" "$out" && { show; fail "the refused reset was carried out"; }
run $T "$CTL" --state "$state" status || { show; fail "pristinectl as root failed after the refusals"; }
echo "  refused (exit 1) and logged; nothing was reset"

echo "== image export and import: qemu-img as $U"
exp=$tmpdir/export
mkdir -m 0700 "$exp" && chown "$U:" "$exp"
run 120 "$CTL" --state "$state" image export golden 1 "$exp/golden.qcow2" --format qcow2 \
	|| { show; cat "$DLOG" | tail -n 20; fail "image export failed"; }
[ "$(owner "$exp/golden.qcow2")" = "$U" ] || fail "the export is not $U's"
run $T qemu-img compare -f raw -F qcow2 "$img" "$exp/golden.qcow2" || { show; fail "the export differs from the image"; }
echo "  exported v1 to qcow2 as $U: identical"
src=$tmpdir/imp.qcow2
qemu-img convert -f raw -O qcow2 "$img" "$src"
chmod 0600 "$src"	# root's only: qemu-img, running as the user, cannot read it
rc=0; timeout -k 5 120 "$CTL" --state "$state" image import imp "$src" >"$out" 2>&1 || rc=$?
show
[ "$rc" != 0 ] || fail "import of a file only root can read succeeded"
grep -qi "permission denied" "$out" || fail "no permission message for the unreadable import"
chmod 0644 "$src"
run 120 "$CTL" --state "$state" image import imp "$src" || { show; fail "import of a readable qcow2 failed"; }
bad=$(find "$state/images/imp" ! -user "$U")
[ -z "$bad" ] || fail "imported files not $U's: $bad"
echo "  a qcow2 $U can read imports; one only root can read is refused with a message"

echo "== restart as systemd/pristined.service would: its bounding set, no_new_privs, PRISTINED_USER"
stop_daemon
[ ! -e "$state/pristined.sock" ] || fail "the admin socket was left behind"
touch "$state/root-file"; mkdir "$state/root-dir"; touch "$state/root-dir/f"
echo secret >"$tmpdir/secret"; chmod 0600 "$tmpdir/secret"
ln -s "$tmpdir/secret" "$state/link"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$TOP/systemd/pristined.service" | tr 'A-Z' 'a-z' \
	| sed 's/cap_//g; s/^ *//; s/ *$//; s/  */,+/g')
[ -n "$caps" ] || fail "no CapabilityBoundingSet= in systemd/pristined.service"
echo "  bounding set: $caps"
# The unit's root: only these capabilities (from execve on), no_new_privs,
# the user from the environment.  exec all the way: DPID is the daemon's.
cat >"$tmpdir/as-unit" <<EOF
#!/bin/sh
exec setpriv --bounding-set -all,+$caps --inh-caps -all --no-new-privs \\
	env PRISTINED_USER=$U "$PRISTINED" "\$@"
EOF
chmod 0755 "$tmpdir/as-unit"
PRISTINED=$tmpdir/as-unit start_daemon --image "$img" --state "$state" --boot-listen "127.0.0.1:$BPORT"
wait_dropped
check_dropped "$DPID"
url="iscsi://127.0.0.1:$PORT/$TARGET/0"
for f in root-file root-dir root-dir/f; do
	[ "$(owner "$state/$f")" = "$U" ] || fail "$f was not handed over"
done
[ "$(owner "$tmpdir/secret")" = root ] || fail "a symlink in the state was followed"
run $T qemu-io -f raw -r -c "read -P 0x6b 2M 64k" "$url" || { show; fail "qemu-io read after restart failed"; }
grep -q "Pattern verification failed" "$out" && { show; fail "the client's data did not survive the restart"; }
run $T "$CTL" --state "$state" client list || { show; fail "client list after restart failed"; }
run $T curl -sS -m $T "http://127.0.0.1:$BPORT/boot.ipxe" || { show; fail "GET /boot.ipxe after restart failed"; }
echo "  dropped again; entries handed over, symlink not followed, data kept"
stop_daemon
rm -f "$state/link"

# refuse_start WHY REGEX ARGS...: the daemon exits at start, never serving.
refuse_start() {
	local why=$1 re=$2; shift 2
	local log=$tmpdir/refused.log rc=0
	timeout -k 5 $T "$PRISTINED" --listen "127.0.0.1:$(free_port)" "$@" >"$log" 2>&1 || rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cat "$log"; fail "$why: pristined did not refuse (exit $rc)"; }
	grep -qE -- "$re" "$log" || { cat "$log"; fail "$why: no message /$re/"; }
	! grep -q 'running as user' "$log" || fail "$why: dropped and served anyway"
	grep -E -- "$re" "$log" | head -n 1 | sed 's/^/    /'
}
echo "== refusals at start"
touch "$state/foreign"; chown nobody "$state/foreign"
refuse_start "a third user's file" "belongs to uid .*chown -R $U: " \
	--image "$img" --state "$state" --user "$U"
rm -f "$state/foreign"
touch "$state/linked"; ln "$state/linked" "$tmpdir/second-link"
refuse_start "a root file with two links" "has 2 hard links" \
	--image "$img" --state "$state" --user "$U"
rm -f "$state/linked" "$tmpdir/second-link"
refuse_start "an unknown user" "does not exist: create it" \
	--image "$img" --state "$state" --user no-such-user-pristine
refuse_start "root as the user" "would keep root's rights" \
	--image "$img" --state "$state" --user root

echo "== user = in a configuration file"
cport=$(free_port)
cat >"$tmpdir/p.conf" <<EOF
[server]
listen = 127.0.0.1:$cport
state = $tmpdir/state2
user = $U
[image golden]
path = $img
EOF
DLOG=$tmpdir/pristined-conf.log
"$PRISTINED" -c "$tmpdir/p.conf" >"$DLOG" 2>&1 &
DPID=$!
wait_dropped
check_dropped "$DPID"
[ "$(owner "$tmpdir/state2")" = "$U" ] || fail "state2 not handed over"
stop_daemon

[ "$(sha256sum <"$img")" = "$sum0" ] || fail "the golden image changed"
echo "golden image unchanged"
echo PASS
