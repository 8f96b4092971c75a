#!/usr/bin/env bash
# Issue 16, "what it must show" 3: Wake-on-LAN, checked byte by byte on
# a veth whose far end is in a network namespace this test makes.
#
#   root namespace: veth HOST end, 10.213.0.1/24 (broadcast 10.213.0.255)
#   namespace NS:   veth PEER end, up; tests/wake/catch.py records every
#                   IPv4/UDP frame arriving on it (AF_PACKET raw socket)
#   pristined -c:   [network lab] subnet 10.213.0.0/24, interface = HOST,
#                   wake-port 4009, and [network office] (another subnet,
#                   so that no PC falls back on "the only network");
#                   images win and lin; pc1, pc2 (win) and pc3 (lin) with
#                   MACs and ip = 10.213.0.1x, nomac (win) without a MAC
#
# What it shows:
#   - `client wake pc1` puts exactly pc1's packet on the wire, 3 copies,
#     each: Ethernet destination ff:ff:ff:ff:ff:ff, IPv4 destination
#     10.213.0.255, UDP destination port 4009, a 102-byte payload of
#     6 x 0xFF and pc1's MAC 16 times;
#   - with pc1 online (an iSCSI session held), `client wake --all --image
#     win` sends pc2's only: pc1 skipped as online, nomac skipped for its
#     missing MAC, pc3 (image lin) not touched;
#   - `client wake nomac` is an error naming the PC, and sends nothing;
#   - after pc1 logged in from 127.0.0.1 (no [network] holds it), it is
#     still woken on lab, by its ip = 10.213.0.11 rule;
#   - the daily wake: [image lin] wake-at = 07:50 with pristined's clock
#     set (TZ, an offset to the second, no code of ours involved) so that
#     07:50 local comes 12 s after start: pc3's packet goes out within a
#     scheduler tick, and pc1/pc2 (win, no wake-at) get none;
#   - every wake is in the event log (kind "wake").
# The namespace and the veth are removed by name in the trap.
# Needs root, ip (iproute2), python3, jq.
. "$(dirname "$0")/../lib/common.sh"
for tool in ip jq python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns, veth)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
CTL=${CTL:-$BUILD/pristinectl}
[ -x "$CTL" ] || skip "$CTL not built (make)"

NS=pwake$$ HOST=pwk$$h PEER=pwk$$p
BCAST=10.213.0.255 WPORT=4009
MAC1=52:54:00:7a:00:01 MAC2=52:54:00:7a:00:02 MAC3=52:54:00:7a:00:03
P=iqn.2024-01.test.wake
HOLD=""
cleanup() {
	[ -n "$HOLD" ] && kill "$HOLD" 2>/dev/null
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip link del "$HOST" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	cleanup_common
}
trap cleanup EXIT

ip netns add "$NS" || skip "cannot create a network namespace (ip netns add failed)"
ip link add "$HOST" type veth peer name "$PEER" || fail "cannot create a veth pair"
ip link set "$PEER" netns "$NS" || fail "cannot move $PEER into $NS"
ip addr add 10.213.0.1/24 brd + dev "$HOST" || fail "cannot address $HOST"
ip link set "$HOST" up
ip netns exec "$NS" ip link set "$PEER" up
ip netns exec "$NS" ip link set lo up
# IPv6 would put router solicitations on the wire; they are not UDP, but
# the less noise the clearer a failure.
sysctl -qw "net.ipv6.conf.$HOST.disable_ipv6=1" 2>/dev/null

make_image "$tmpdir/win.raw" 4
make_image "$tmpdir/lin.raw" 4
PORT=$(free_port)
STATE=$tmpdir/state
write_conf() {   # $1 = extra line for [image lin]
	cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
state = $STATE

[defaults]
enroll = deny

[network office]
subnet = 10.214.0.0/24

[network lab]
subnet = 10.213.0.0/24
interface = $HOST
wake-port = $WPORT

[image win]
path = $tmpdir/win.raw
target = iqn.2026-11.org.pristine:win

[image lin]
path = $tmpdir/lin.raw
target = iqn.2026-11.org.pristine:lin
$1

[client pc1]
initiator = $P:pc1
image = win
mac = $MAC1
ip = 10.213.0.11, 127.0.0.1

[client pc2]
initiator = $P:pc2
image = win
mac = $MAC2
ip = 10.213.0.12

[client pc3]
initiator = $P:pc3
image = lin
mac = $MAC3
ip = 10.213.0.13

[client nomac]
initiator = $P:nomac
image = win
CONF
}
ctl() { "$CTL" --state "$STATE" "$@"; }

# catch SECONDS OUT: start catch.py in the namespace; returns once it listens.
CATCH=""
catch() {
	ip netns exec "$NS" python3 "$TOP/tests/wake/catch.py" "$PEER" "$1" "$2" >"$2.log" 2>&1 &
	CATCH=$!
	wait_ready "$2.log" "catch.py did not start"
}

# check OUT MAC...: the frames caught are exactly 3 copies of the magic
# packet of each MAC given, every byte as Wake-on-LAN wants it.
check() {
	local out=$1; shift
	wait "$CATCH" || { cat "$out.log"; fail "catch.py failed"; }
	python3 - "$out" "$BCAST" "$WPORT" "$@" <<'PY' || fail "frames caught in $out are wrong"
import json, sys
frames = json.load(open(sys.argv[1]))
bcast, port, macs = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
want = {}
for m in macs:
    hw = bytes.fromhex(m.replace(":", ""))
    want[(b"\xff" * 6 + hw * 16).hex()] = m
seen = {}
ok = True
for f in frames:
    if f["udp_dport"] != port and f["payload"] not in want:
        continue                      # not ours (nothing else should be UDP here)
    p = bytes.fromhex(f["payload"])
    errs = []
    if f["eth_dst"] != "ff:ff:ff:ff:ff:ff":
        errs.append("Ethernet destination %s" % f["eth_dst"])
    if f["ip_dst"] != bcast:
        errs.append("IPv4 destination %s" % f["ip_dst"])
    if f["udp_dport"] != port:
        errs.append("UDP port %d" % f["udp_dport"])
    if len(p) != 102 or f["udp_len"] != 110:
        errs.append("payload %d bytes (UDP length %d)" % (len(p), f["udp_len"]))
    if p[:6] != b"\xff" * 6:
        errs.append("payload does not start with 6 x 0xFF")
    if f["payload"] not in want:
        errs.append("payload is not the packet of any of %s" % macs)
    if errs:
        print("bad frame:", f, "; ".join(errs))
        ok = False
        continue
    seen[want[f["payload"]]] = seen.get(want[f["payload"]], 0) + 1
for m in macs:
    if seen.get(m, 0) != 3:
        print("MAC %s: %d copies caught, expected 3" % (m, seen.get(m, 0)))
        ok = False
print("caught:", seen)
sys.exit(0 if ok else 1)
PY
}

# ---- wakes on request
write_conf ""
start_daemon_conf "$tmpdir/p.conf"

catch 3 "$tmpdir/c1.json"
ctl client wake pc1 >"$tmpdir/w1.out" || fail "client wake pc1 failed"
cat "$tmpdir/w1.out"
grep -q "^woke pc1 ($MAC1) via lab (10.213.0.255:$WPORT on $HOST)" "$tmpdir/w1.out" ||
	fail "client wake pc1 does not say it woke pc1 via lab"
check "$tmpdir/c1.json" "$MAC1"

# pc1 online: an iSCSI session held on win
cat >"$tmpdir/hold.py" <<PY
import sys, time
sys.path.insert(0, "$TOP/tests/lib")
import iscsi_initiator as I
s = I.Session("127.0.0.1", $PORT, initiator_name="$P:pc1", target_name="iqn.2026-11.org.pristine:win")
s.login()
print("ready", flush=True)
time.sleep(120)
PY
python3 "$tmpdir/hold.py" >"$tmpdir/hold.log" 2>&1 &
HOLD=$!
wait_ready "$tmpdir/hold.log" "could not log pc1 in"

catch 3 "$tmpdir/c2.json"
ctl --json client wake --all --image win >"$tmpdir/w2.json" || fail "client wake --all --image win failed"
cat "$tmpdir/w2.json"
[ "$(jq -c '[.woken[].client]' "$tmpdir/w2.json")" = '["pc2"]' ] || fail "--all --image win should wake pc2 only"
[ "$(jq -r '.woken[0].mac' "$tmpdir/w2.json")" = "$MAC2" ] || fail "pc2 woken with the wrong MAC"
jq -e '.skipped[] | select(.client == "pc1") | .why | test("online")' "$tmpdir/w2.json" >/dev/null ||
	fail "pc1 (online) not skipped as online"
jq -e '.skipped[] | select(.client == "nomac") | .why | test("MAC")' "$tmpdir/w2.json" >/dev/null ||
	fail "nomac not skipped for its missing MAC"
jq -e '[.woken[], .skipped[]] | map(.client) | index("pc3") == null' "$tmpdir/w2.json" >/dev/null ||
	fail "pc3 (image lin) was part of --image win"
check "$tmpdir/c2.json" "$MAC2"
kill "$HOLD" 2>/dev/null; wait "$HOLD" 2>/dev/null; HOLD=""

# a PC without a MAC, named: an error naming it, nothing sent
catch 2 "$tmpdir/c3.json"
if ctl client wake nomac 2>"$tmpdir/w3.err"; then fail "client wake nomac succeeded"; fi
cat "$tmpdir/w3.err"
grep -q "client nomac has no MAC address" "$tmpdir/w3.err" || fail "the error does not name nomac's missing MAC"
check "$tmpdir/c3.json"

# an unknown PC, and --image without --all: errors
if ctl client wake nosuch 2>/dev/null; then fail "client wake nosuch succeeded"; fi
if ctl client wake pc1 --image win 2>/dev/null; then fail "--image without --all accepted"; fi

ctl --json events >"$tmpdir/ev1.json" || fail "events failed"
[ "$(jq -c '[.events[] | select(.kind == "wake") | .client]' "$tmpdir/ev1.json")" = '["pc1","pc2"]' ] ||
	{ jq . "$tmpdir/ev1.json"; fail "the event log does not hold the wakes of pc1 then pc2"; }

# pc1 last logged in from 127.0.0.1, which no [network] holds: its ip =
# rule (10.213.0.11) still puts it on lab
catch 3 "$tmpdir/c5.json"
ctl client wake pc1 | grep -q "^woke pc1 ($MAC1) via lab " || fail "pc1 is not woken via lab after its login"
check "$tmpdir/c5.json" "$MAC1"

# the API as the console calls it: POST /v1/clients/{id}/wake, and bodies
# that are neither a list of clients nor "all" are refused (400)
api() {   # METHOD PATH [BODY] -> prints "STATUS BODY"
	curl -s --unix-socket "$STATE/pristined.sock" -X "$1" ${3:+-d "$3"} \
		-w ' %{http_code}' "http://pristine$2"
}
api POST /v1/clients/pc3/wake | grep -q '"client": *"pc3".* 200$' || fail "POST /v1/clients/pc3/wake did not wake pc3"
for b in '{}' '{"all":true,"clients":["pc1"]}' '{"clients":[]}' '{"clients":[1]}' '{"all":"yes"}' \
	 '{"clients":["pc1"],"image":"win"}' '{"all":true,"image":7}'; do
	api POST /v1/wake "$b" | grep -q ' 400$' || fail "POST /v1/wake $b was not refused with 400"
done
api POST /v1/wake '{"all":true,"image":"nosuch"}' | grep -q ' 404$' || fail "an unknown image is not 404"
stop_daemon

# ---- the daily wake at 07:50, with pristined's local clock set by TZ
# so that 07:50:00 comes 12 seconds from now.
TZV=$(python3 - <<'PY'
import time
now = int(time.time())
local = 7 * 3600 + 50 * 60 - 12          # 07:49:48 local, now
off = (now % 86400 - local) % 86400       # UTC - local, seconds
if off > 43200:
    off -= 86400
sign = "+" if off >= 0 else "-"
off = abs(off)
print("WAK%s%02d:%02d:%02d" % (sign, off // 3600, off // 60 % 60, off % 60))
PY
)
echo "TZ=$TZV: local time is $(TZ=$TZV date +%T)"
write_conf "wake-at = 07:50"
# the scheduler looks every 20 s: 07:50 passes at +12 s, the first look
# after it is at about +20 s; the catcher listens 35 s.
catch 35 "$tmpdir/c4.json"
TZ=$TZV start_daemon_conf "$tmpdir/p.conf"
ctl --json image show lin | jq -e '.wake_at == "07:50"' >/dev/null || fail "image show lin: wake_at is not 07:50"
ctl --json image list | jq -e '.images[] | select(.name == "win") | .wake_at == null' >/dev/null ||
	fail "image list: win has a wake_at"
ctl image versions lin | grep -q "^daily wake (Wake-on-LAN): 07:50$" ||
	fail "image versions lin does not show the daily wake"
check "$tmpdir/c4.json" "$MAC3"
ctl --json events >"$tmpdir/ev2.json"
[ "$(jq -c '[.events[] | select(.kind == "wake") | .client]' "$tmpdir/ev2.json")" = '["pc3"]' ] ||
	{ jq . "$tmpdir/ev2.json"; tail -n 20 "$DLOG"; fail "the daily wake did not wake pc3 (only)"; }
jq -e '.events[] | select(.kind == "wake") | .text | test("daily at 07:50")' "$tmpdir/ev2.json" >/dev/null ||
	fail "the daily wake's event does not say daily at 07:50"
stop_daemon
echo "PASS"
