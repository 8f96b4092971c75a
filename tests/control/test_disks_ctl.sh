#!/usr/bin/env bash
# tests/control/test_disks_ctl.sh - extra disks (LUN 1..n, src/lab/xdisk.h)
# through pristinectl against a live pristined: client disk add/remove,
# image disk add/remove, client reset --disk, the DISKS table of client
# show and the disks of image show, in words and with --json; every
# refusal's message (unknown image, the boot image itself, twice, an
# attachment of the configuration file, an online reset without --force,
# usage errors); a disk given while a PC is logged in reaches its session
# (the unit attention REPORTED LUNS DATA HAS CHANGED, then REPORT LUNS
# lists the new LUN); the API's attachments survive a restart.  Builds
# nothing: needs build/pristinectl and the sanitizer daemon (make all asan).
. "$(dirname "$0")/../lib/common.sh"

CTL=$BUILD/pristinectl
[ -x "$CTL" ] || skip "build/pristinectl not built (make)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

HOLDERS=()
cleanup_disks() {
	for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
	cleanup_common
}
trap cleanup_disks EXIT

STATE=$tmpdir/state OUT=$tmpdir/out ERR=$tmpdir/err
P=iqn.2024-01.test.disks T=iqn.2026-11.org.pristine:lab

# ctl EXPECTED_RC ARGS...: run pristinectl on the daemon, keep stdout/stderr.
ctl() {
	local want=$1 rc=0
	shift
	"$CTL" --state "$STATE" "$@" >"$OUT" 2>"$ERR" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "--- stdout"; cat "$OUT"; echo "--- stderr"; cat "$ERR"
		fail "pristinectl $* exited $rc, wanted $want"
	fi
}
out_has() { grep -q -E -- "$1" "$OUT" || { cat "$OUT"; fail "stdout lacks /$1/"; }; }
out_lacks() { ! grep -q -E -- "$1" "$OUT" || { cat "$OUT"; fail "stdout has /$1/"; }; }
err_has() { grep -q -i -- "$1" "$ERR" || { cat "$ERR"; fail "stderr lacks '$1'"; }; }
# json PYTHON-EXPR: the --json output as d satisfies the expression.
json() {
	python3 - "$OUT" "$1" <<'PY' || { cat "$OUT"; fail "--json: not ($1)"; }
import json, sys
d = json.load(open(sys.argv[1]))
def disk(img, of=None):
    m = [x for x in (of if of is not None else d)["disks"] if x["image"] == img]
    return m[0] if m else None
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

for i in lab games tools data scratch; do make_image "$tmpdir/$i.raw" 2; done
PORT=$(free_port)
cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
state = $STATE

[defaults]
enroll = deny

[image lab]
path = $tmpdir/lab.raw
target = $T
disks = data:read-only

[image games]
path = $tmpdir/games.raw
disk-quota = 1G

[image tools]
path = $tmpdir/tools.raw

[image data]
path = $tmpdir/data.raw

[image scratch]
path = $tmpdir/scratch.raw

[client pc1]
initiator = $P:pc1
image = lab
disks = scratch:discard-on-boot

[client pc2]
initiator = $P:pc2
image = lab

[client pc3]
initiator = $P:pc3
image = lab
CONF

# --- usage errors: exit 2, before any connection
ctl 2 client disk
err_has "client disk needs a verb"
ctl 2 client disk frob pc1 games
ctl 2 client disk add pc1
err_has "client disk add needs"
ctl 2 client disk add pc1 games --force
err_has "--force does not go with client disk add"
ctl 2 client disk add pc1 games --quota 20X
err_has "--quota"
ctl 2 client disk remove pc1 games --policy overlay
err_has "--policy does not go with client disk remove"
ctl 2 image disk add lab
ctl 2 image disk remove lab games --quota 1G
ctl 2 client reset pc1 --disk
err_has "--disk needs a value"
ctl 2 client reset pc1 --disk ""
err_has "--disk IMAGE"
ctl 2 client show pc1 --disk games
err_has "--disk does not go with client show"
ctl 0 --help
out_has "client disk add ID IMAGE \[--policy P\] \[--quota SIZE\]"
out_has "image disk remove NAME IMAGE"
out_has "client reset ID \[--disk IMAGE\] \[--force\]"

start_daemon_conf "$tmpdir/p.conf"

# --- the configuration's disks: the group's (data) and pc1's own (scratch)
ctl 0 client show pc1
out_has "^disks:"
out_has "^LUN +IMAGE +VERSION +POLICY +USED +QUOTA +FROM"
out_has "^0 +lab +v1 +persistent .* boot \(config\)"
out_has "^1 +data +v1 +read-only +- +- +group \(config\)"
out_has "^2 +scratch +v1 +discard-on-boot .* client \(config\)"
ctl 0 --json client show pc1
json 'd["disks"][0]["lun"] == 0 and d["disks"][0]["from"] == "boot"'
json 'disk("data")["lun"] == 1 and disk("data")["policy"] == "read-only" and disk("data")["config"]'
json 'disk("scratch")["lun"] == 2 and disk("scratch")["from"] == "client"'
ctl 0 --json client list
json 'all(len(c["disks"]) >= 2 for c in d["clients"])'
ctl 0 image show lab
out_has "^extra disks of its PCs"
out_has "^data +read-only .* config"
ctl 0 image show data
out_has "^an extra disk of 3 PCs"
ctl 0 --json image show data
json 'd["disk_of"] == 3 and d["disks"] == []'
ctl 0 --json image list
json '[i for i in d["images"] if i["name"] == "lab"][0]["disks"][0]["image"] == "data"'

# --- client disk add: the next free LUN, the image's own policy and quota
ctl 0 client disk add pc1 games
out_has "^client pc1: disk games added as LUN 3 \(overlay, quota 1.0 GiB\)"
ctl 0 --json client disk add pc1 tools --policy discard-on-boot --quota 20M
json 'disk("tools")["lun"] == 4 and disk("tools")["policy"] == "discard-on-boot"'
json 'disk("tools")["quota_bytes"] == 20 << 20 and disk("tools")["from"] == "client"'
json 'not disk("tools")["config"]'
ctl 0 client show pc1
out_has "^3 +games +v1 +overlay .* 1.0 GiB +client$"
out_has "^4 +tools +v1 +discard-on-boot .* 20.0 MiB +client$"
ctl 0 image show games
out_has "^an extra disk of 1 PC$"

# --- refusals, each with its reason
ctl 1 client disk add pc1 games
err_has "already"
ctl 1 client disk add pc1 lab
err_has "boot image"
ctl 1 client disk add pc1 nosuch
err_has "no image nosuch"
ctl 1 client disk add nobody games
err_has "nobody"
ctl 1 client disk add pc2 games --policy sometimes
err_has "'sometimes' is not overlay, discard-on-boot or read-only"
ctl 1 client disk remove pc1 scratch
err_has "configuration file"
ctl 1 client disk remove pc1 data
err_has "image disk remove lab data"
ctl 1 image disk remove lab data
err_has "configuration file"
ctl 1 client disk remove pc2 games
err_has "no disk games"
ctl 1 image disk add lab lab
err_has "boot image"
ctl 1 image disk add lab nosuch
err_has "no image nosuch"
ctl 1 image disk add nolab games
err_has "no image nolab"
ctl 1 image disk add lab data
err_has "configuration file"

# --- image disk add: every PC of lab, in the order added
ctl 0 image disk add lab tools --policy read-only
out_has "^image lab: every PC of it gets disk tools \(read-only\)"
ctl 1 image disk add lab tools
err_has "already"
ctl 0 --json client show pc2
json 'disk("data")["lun"] == 1 and disk("tools")["lun"] == 2'
json 'disk("tools")["policy"] == "read-only" and disk("tools")["from"] == "group"'
# pc1's own attachment of tools wins (its policy, its LUN kept)
ctl 0 --json client show pc1
json 'disk("tools")["lun"] == 4 and disk("tools")["policy"] == "discard-on-boot" and disk("tools")["from"] == "client"'
ctl 0 image show lab
out_has "^tools +read-only .* api$"
ctl 0 --json image disk add lab games
json 'd["name"] == "lab" and [x["image"] for x in d["disks"]] == ["data", "tools", "games"]'
ctl 0 image show tools
out_has "^an extra disk of 3 PCs"

# --- reset: one disk, all, online
ctl 0 client reset pc1 --disk games
out_has "^client pc1: disk games reset$"
ctl 0 --json client reset pc1 --disk lab
json 'd["disk"] == "lab" and d["reset"] == "pc1"'
ctl 1 client reset pc1 --disk nosuch
err_has "no disk nosuch"
ctl 0 client reset pc1
out_has "^client pc1 reset$"

# A session of pc1 on its target: one disk's reset needs --force and leaves
# the session up.
cat >"$tmpdir/hold.py" <<PY
import sys, time, os
sys.path.insert(0, "$TOP/tests/lib")
import iscsi_initiator as I
s = I.Session("127.0.0.1", $PORT, initiator_name=sys.argv[1], target_name="$T")
s.login()
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    s.nop()
    time.sleep(0.1)
time.sleep(120)
PY
hold() {
	local log=$tmpdir/hold.$RANDOM
	python3 "$tmpdir/hold.py" "$1" "$tmpdir/never" >"$log" 2>&1 &
	HOLDERS+=($!)
	wait_ready "$log" "could not hold a session for $1"
}
hold "$P:pc1"
ctl 1 client reset pc1 --disk games
err_has "online"
err_has "--force"
ctl 0 client reset pc1 --disk games --force
out_has "disk games reset"
ctl 0 session list
out_has "$P:pc1"
ctl 1 client reset pc1
err_has "--force"

# --- a disk given while pc2 is logged in reaches its session: TEST UNIT
# READY reports REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh), REPORT LUNS then
# lists the new LUN, and it reads the image's content.
cat >"$tmpdir/live.py" <<PY
import os, sys, time
sys.path.insert(0, "$TOP/tests/lib")
import iscsi_initiator as I
go, done = sys.argv[1], sys.argv[2]

def luns(s):
    return sorted(I.report_luns(s))

def asc(t):
    s = t.sense
    return (s[12], s[13]) if s and s[0] & 0x7f in (0x70, 0x71) else (s[2], s[3]) if s else None

s = I.Session("127.0.0.1", $PORT, initiator_name="$P:pc2", target_name="$T")
s.login()
s.ready()
before = luns(s)
print("before", before, flush=True)
while not os.path.exists(go):
    s.nop()
    time.sleep(0.05)
t = s.command(I.cdb_test_unit_ready())
assert t.status == I.CHECK_CONDITION and asc(t) == (0x3f, 0x0e), \
    ("no REPORTED LUNS DATA HAS CHANGED", t.status, t.sense.hex())
s.ready()
after = luns(s)
print("after", after, flush=True)
new = [l for l in after if l not in before]
assert len(new) == 1, (before, after)
# the new LU's own unit attentions (a new LU: power on, LUNs changed) first
for _ in range(5):
    t = s.command(I.cdb_test_unit_ready(), lun=new[0])
    if t.status == I.GOOD:
        break
    assert t.status == I.CHECK_CONDITION and t.sense[2] & 0xf == 6, (t.status, t.sense.hex())
assert t.status == I.GOOD, ("new LUN not ready", t.sense.hex())
t = s.command(I.cdb_read10(0, 1), read_len=512, lun=new[0])
assert t.status == I.GOOD and bytes(t.data[:15]) == b"LBA000000000000", (t.status, bytes(t.data[:16]))
open(done, "w").write("%d\n" % new[0])
s.logout()
PY
python3 "$tmpdir/live.py" "$tmpdir/go" "$tmpdir/done" >"$tmpdir/live.log" 2>&1 &
LIVE=$!
HOLDERS+=($LIVE)
for _ in $(seq 1 100); do grep -q before "$tmpdir/live.log" && break; sleep 0.1; done
grep -q "before \[0, 1, 2, 3\]" "$tmpdir/live.log" ||
	{ cat "$tmpdir/live.log"; fail "pc2's session did not see LUN 0..3 (lab, data, tools, games)"; }
ctl 0 client disk add pc2 scratch
out_has "^client pc2: disk scratch added as LUN 4"
ctl 0 client show pc2
out_has "^4 +scratch +v1 +overlay .* client$"
touch "$tmpdir/go"
wait "$LIVE" || { cat "$tmpdir/live.log"; fail "pc2's session did not get its new LUN"; }
[ "$(cat "$tmpdir/done")" = 4 ] || { cat "$tmpdir/live.log"; fail "the new LUN is not 4"; }

# --- versions: a newer version of games shows as "-> v2 current" until the
# disk's reset
ctl 0 image edit games --client pc3
ctl 0 image commit games -m "new season"
ctl 0 client show pc2
out_has "^3 +games +v1 -> v2 current +overlay"
ctl 0 client reset pc2 --disk games
ctl 0 client show pc2
out_has "^3 +games +v2 +overlay"
ctl 0 --json client show pc2
json 'disk("games")["version"] == 2 and disk("games")["current_version"] == 2'

# --- removals
ctl 0 client disk remove pc1 games
out_has "^client pc1: disk games removed"
ctl 0 client show pc1
out_has "^3 +games .* group$"        # the group's attachment of games is left
ctl 0 --json client disk remove pc2 scratch
json 'disk("scratch") is None'
ctl 1 client disk remove pc2 scratch
err_has "no disk scratch"
ctl 0 image disk remove lab games
out_has "^image lab: disk games removed from its PCs"
ctl 1 image disk remove lab games
err_has "no disk games"
ctl 0 --json client show pc3
json 'disk("games") is None and disk("tools")["lun"] == 2'

# --- the API's attachments survive a restart (with their LUNs)
for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
HOLDERS=()
stop_daemon
start_daemon_conf "$tmpdir/p.conf"
ctl 0 --json client show pc1
json 'disk("tools")["lun"] == 4 and disk("tools")["policy"] == "discard-on-boot"'
json 'disk("scratch")["lun"] == 2 and disk("data")["lun"] == 1 and disk("games") is None'
ctl 0 --json image show lab
json '[x["image"] for x in d["disks"]] == ["data", "tools"]'
stop_daemon
echo "PASS: extra disks through pristinectl"
