#!/usr/bin/env bash
# tests/control/test_human_output.sh - what an admin reads (issue 19 item 6):
#   - client show: last login and last boot in local time ("never" before
#     the first), "-" for unknown fields, never a raw null or epoch seconds;
#   - every verb's human output (status, client list/show, session list,
#     image list/versions, job list, pxe dnsmasq) holds no raw JSON null;
#   - jobs: a finished job's phase is "done" or "failed" in --json, the
#     same word as its state and as the human list's;
#   - the boot endpoint's log names URLs that answer: the address it is
#     bound to, or for *:PORT every address it lists (and no IPv6 socket
#     that nobody serves).
. "$(dirname "$0")/../lib/common.sh"

CTL=$BUILD/pristinectl
[ -x "$CTL" ] || skip "build/pristinectl not built (make)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
command -v curl >/dev/null || skip "curl not installed"
command -v qemu-img >/dev/null || skip "qemu-img not installed"

HOLDER=""
cleanup_human() {
	[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
	cleanup_common
}
trap cleanup_human EXIT

STATE=$tmpdir/state
OUT=$tmpdir/out
PC=iqn.2024-01.test.human:pc1

ctl() {
	local rc=0
	"$CTL" --state "$STATE" "$@" >"$OUT" 2>"$tmpdir/err" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$OUT" "$tmpdir/err"; fail "pristinectl $* exited $rc"; }
}
# no_null WHAT: the human output in $OUT holds no raw JSON null.
no_null() {
	if grep -n -w 'null' "$OUT"; then fail "$1 prints a raw null"; fi
}
out_has() { grep -q -- "$1" "$OUT" || { cat "$OUT"; fail "stdout lacks '$1'"; }; }

make_image "$tmpdir/golden.img" 8
BPORT=$(free_port)
start_daemon --image "$tmpdir/golden.img" --state "$STATE" --nop-interval 0 \
	--boot-listen "127.0.0.1:$BPORT"

# --- the boot endpoint on one address: that URL, and it answers
grep -q "boot endpoint on http://127.0.0.1:$BPORT/boot.ipxe\$" "$DLOG" ||
	{ cat "$DLOG"; fail "the boot endpoint's URL is not logged as http://127.0.0.1:$BPORT/boot.ipxe"; }
curl -sS -m 10 "http://127.0.0.1:$BPORT/boot.ipxe" | head -n 1 | grep -q '^#!ipxe' ||
	fail "the logged boot URL does not answer"
ctl --json status
python3 - "$OUT" "$BPORT" "$PORT" <<'PY' || { cat "$OUT"; fail "status --json: wrong boot or iSCSI port"; }
import json, sys
st = json.load(open(sys.argv[1]))
assert st["boot"]["port"] == int(sys.argv[2]), st["boot"]
assert st["iscsi_port"] == int(sys.argv[3]), st["iscsi_port"]
PY

# --- client show before any login: "never", "-", no null, no epoch 0
ctl client add "$PC" --name pc1
ctl client show pc1
no_null "client show"
out_has "^last login: *never$"
out_has "^last boot: *never$"
out_has "^mac: *-$"
out_has "^overlay: *ok$"
if grep -E -n '(login|boot).*: *0$' "$OUT"; then fail "client show prints a time as 0"; fi

# --- after a login: local time, the one the API's last_login names
cat >"$tmpdir/hold.py" <<PY
import sys, time
sys.path.insert(0, "$TOP/tests/lib")
import iscsi_initiator as I
s = I.Session("127.0.0.1", int(sys.argv[1]), initiator_name=sys.argv[2], target_name=sys.argv[3])
s.login()
print("ready", flush=True)
time.sleep(60)
PY
python3 "$tmpdir/hold.py" "$PORT" "$PC" "$TARGET" >"$tmpdir/hold.log" 2>&1 &
HOLDER=$!
wait_ready "$tmpdir/hold.log" "could not log in as $PC"
ctl --json client show pc1
when=$(python3 -c 'import json, sys, time
t = json.load(open(sys.argv[1]))["last_login"]
assert t > 0, t
print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)))' "$OUT") ||
	{ cat "$OUT"; fail "--json client show has no last_login after a login"; }
ctl client show pc1
no_null "client show (online)"
out_has "^last login: *$when\$"
out_has "online, 1 session"

# --- every verb's human output: no raw null
ctl status;               no_null "status"
ctl client list;          no_null "client list"
ctl session list;         no_null "session list"
ctl image list;           no_null "image list"
ctl image versions golden; no_null "image versions"
ctl pxe dnsmasq --server 127.0.0.1; no_null "pxe dnsmasq"

# --- jobs: one done, one failed; phase = state, in --json and in words
qemu-img create -q -f qcow2 "$tmpdir/disk.qcow2" 4M || fail "qemu-img create failed"
ctl image import imp "$tmpdir/disk.qcow2"
rc=0
"$CTL" --state "$STATE" image import bad "$tmpdir/golden.img" --format qcow2 >"$OUT" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || { cat "$OUT"; fail "importing a raw file as qcow2 did not fail"; }
ctl --json job list
python3 - "$OUT" <<'PY' || fail "job list --json: a finished job's phase is not its end"
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
states = sorted(j["state"] for j in jobs)
assert states == ["done", "failed"], jobs
for j in jobs:
    assert j["phase"] == j["state"], j
    if j["state"] == "done":
        assert j["progress"] == 1.0 and j["done_bytes"] == j["total_bytes"], j
PY
ctl job list
no_null "job list"
grep -q -E '^[0-9]+ +import +imp +done +100%' "$OUT" || { cat "$OUT"; fail "job list: the import is not done"; }
grep -q -E '^[0-9]+ +import +bad +failed ' "$OUT" || { cat "$OUT"; fail "job list: the bad import is not failed"; }

kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null; HOLDER=""
stop_daemon

# --- the boot endpoint on *:PORT: every URL it logs answers; no IPv6
# socket is bound that nobody would serve
BPORT=$(free_port)
DLOG=$tmpdir/star.log
start_daemon --image "$tmpdir/golden.img" --state "$STATE" --nop-interval 0 --boot-listen "*:$BPORT"
DLOG=$tmpdir/pristined.log   # start_daemon always logs there
grep -q "boot endpoint on http://<any IPv4 address>:$BPORT/boot.ipxe" "$DLOG" ||
	{ cat "$DLOG"; fail "a wildcard boot endpoint does not say it answers on any IPv4 address"; }
if grep -q "http://\*" "$DLOG"; then cat "$DLOG"; fail "a wildcard boot endpoint is logged as http://*"; fi
if grep -q "listening on \[::\]:$BPORT" "$DLOG"; then cat "$DLOG"; fail "an IPv6 boot socket is bound but not served"; fi
urls=$(sed -n "s|.*boot endpoint on \(http://[0-9.]*:$BPORT/boot.ipxe\) (.*|\1|p" "$DLOG")
echo "$urls" | grep -q "^http://127.0.0.1:$BPORT/boot.ipxe\$" ||
	{ cat "$DLOG"; fail "the wildcard boot endpoint does not list 127.0.0.1"; }
for u in $urls; do
	curl -sS -m 10 "$u" | head -n 1 | grep -q '^#!ipxe' || fail "$u (logged) does not answer"
done
stop_daemon
echo "ok"
