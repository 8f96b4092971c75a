#!/usr/bin/env bash
# The event log (issue 16: the console's boots, resets, commits, errors,
# refused logins), read with `pristinectl events`: after, in this order,
#   1. a PC's boot script served by the boot endpoint   -> "boot"
#   2. a login of an unknown initiator (enroll = deny)  -> "refused"
#   3. a login and logout of pc1                        -> "login", "logout"
#   4. an admin reset of pc1                            -> "reset"
#   5. a draft opened and committed                     -> "image" x 2, and
#      the reset of the maintenance PC the commit makes -> "reset"
#   6. a flatten job that ends                          -> "image"
#   7. a client added, changed and removed              -> "client" x 3
# `pristinectl --json events` holds them in that order with the client,
# image and text each names; the human output lists them too.
. "$(dirname "$0")/../lib/common.sh"
for tool in jq curl python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
CTL=${CTL:-$BUILD/pristinectl}
[ -x "$CTL" ] || skip "$CTL not built (make)"

make_image "$tmpdir/g.raw" 4
PORT=$(free_port) BPORT=$(free_port)
STATE=$tmpdir/state P=iqn.2024-01.test.events T=iqn.2026-11.org.pristine:lab
cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
boot-listen = 127.0.0.1:$BPORT
state = $STATE

[defaults]
enroll = deny

[image lab]
path = $tmpdir/g.raw
target = $T

[client pc1]
initiator = $P:pc1
mac = 52:54:00:e0:00:01

[client pc2]
initiator = $P:pc2
CONF
start_daemon_conf "$tmpdir/p.conf"
ctl() { "$CTL" --state "$STATE" "$@"; }

# 1. boot
curl -sf "http://127.0.0.1:$BPORT/boot.ipxe?mac=52-54-00-e0-00-01" | grep -q sanboot ||
	fail "the boot endpoint did not answer pc1 with a sanboot script"
# 2. refused, 3. login + logout
python3 - "$PORT" "$P" "$T" <<'PY' || fail "the logins did not go as expected"
import sys
sys.path.insert(0, __import__("os").environ["TOP"] + "/tests/lib")
import iscsi_initiator as I
port, p, t = int(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    I.Session("127.0.0.1", port, initiator_name=p + ":stranger", target_name=t).login()
    sys.exit("the stranger logged in")
except I.LoginFailed:
    pass
s = I.Session("127.0.0.1", port, initiator_name=p + ":pc1", target_name=t)
s.login()
s.logout()
PY
# the logout event is written when the connection's thread ends
for _ in $(seq 1 50); do
	ctl --json events | jq -e '.events[] | select(.kind == "logout")' >/dev/null && break
	sleep 0.1
done
# the address it logged in from is shown (the console's IP column); pc2
# never logged in: none
[ "$(ctl --json client show pc1 | jq -r .address)" = 127.0.0.1 ] ||
	fail "client show pc1: address is not 127.0.0.1: $(ctl --json client show pc1 | jq -c .address)"
[ "$(ctl --json client show pc2 | jq -r .address)" = null ] || fail "pc2 has an address but never logged in"
ctl client show pc1 | grep -q '^ *address: *127.0.0.1$' || fail "client show pc1 prints no address"
# 4. reset, 5. draft + commit, 6. flatten, 7. client add/set/remove
ctl client reset pc1 >/dev/null || fail "client reset pc1 failed"
ctl image edit lab --client pc2 >/dev/null || fail "image edit failed"
ctl image commit lab -m "patch tuesday" >/dev/null || fail "image commit failed"
ctl image flatten lab >/dev/null || fail "image flatten failed"
ctl client add "$P:pc9" --name pc9 >/dev/null || fail "client add failed"
ctl client set pc9 --quota 1G >/dev/null || fail "client set failed"
ctl client remove pc9 >/dev/null || fail "client remove failed"

ctl --json events >"$tmpdir/ev.json" || fail "pristinectl --json events failed"
jq -c '.events[] | [.kind, .client, .image, .text]' "$tmpdir/ev.json"
got=$(jq -r '[.events[].kind] | join(" ")' "$tmpdir/ev.json")
want="boot refused login logout reset image image reset image client client client"
[ "$got" = "$want" ] || fail "event kinds in order: got '$got', want '$want'"
ev() { jq -r ".events[$1] | $2" "$tmpdir/ev.json"; }
[ "$(ev 0 .client)" = pc1 ] && [ "$(ev 0 .image)" = lab ] || fail "boot event: not pc1 on lab"
ev 0 .text | grep -q "52:54:00:e0:00:01" || fail "boot event does not name the MAC"
[ "$(ev 1 .client)" = "$P:stranger" ] || fail "refused event: not the stranger"
ev 1 .text | grep -q "refused: " || fail "refused event has no reason"
[ "$(ev 2 .client)" = "$P:pc1" ] || fail "login event: not pc1's initiator"
ev 2 .text | grep -q "from 127.0.0.1" || fail "login event does not say where from"
[ "$(ev 4 .client)" = pc1 ] && ev 4 .text | grep -q "reset (admin)" || fail "reset event: not pc1 by admin"
[ "$(ev 5 .client)" = pc2 ] && ev 5 .text | grep -q "draft opened on v1" || fail "image event: no draft opened for pc2"
ev 6 .text | grep -q "committed v2: patch tuesday" || fail "image event: no commit of v2"
[ "$(ev 7 .client)" = pc2 ] && ev 7 .text | grep -q "on v2" || fail "no reset of pc2 onto v2 after the commit"
[ "$(ev 8 .image)" = lab ] && ev 8 .text | grep -q "^flatten job [0-9]* done" || fail "no event of the flatten job's end"
ev 9 .text | grep -q "added" && ev 10 .text | grep -q "changed" && ev 11 .text | grep -q "removed" ||
	fail "client events: not added, changed, removed"
# sequence numbers only grow
jq -e '[.events[].seq] | . == (sort) and (. | length) == (unique | length)' "$tmpdir/ev.json" >/dev/null ||
	fail "event sequence numbers are not increasing"

# the human output: a table with the same events
ctl events >"$tmpdir/ev.txt" || fail "pristinectl events failed"
cat "$tmpdir/ev.txt"
head -n 1 "$tmpdir/ev.txt" | grep -q "^TIME *KIND *CLIENT *IMAGE *WHAT" || fail "no table header"
[ "$(grep -c . "$tmpdir/ev.txt")" -eq 13 ] || fail "the table does not have 12 events"
grep -q "committed v2: patch tuesday" "$tmpdir/ev.txt" || fail "the table lacks the commit"
stop_daemon
echo PASS
