#!/usr/bin/env bash
# Issue 17, "what it must show" 3: a game-disk update moves nobody's
# system disk, and each PC moves to the new game version at its reset of
# that disk, or at its boot by the disk's policy - over iSCSI from here
# (qemu-img/qemu-io and tests/lib/iscsi_initiator.py), no QEMU guest.
#
# One pristined (a configuration file, boot endpoint on): the image lab
# (the system disk, LUN 0) gives every PC of it the game disk games as
# LUN 1; PCs a and b take the group's attachment (games' default policy,
# overlay), PC c attaches games itself with discard-on-boot (its own
# attachment replaces the group's, at the same LUN); maint is the client
# of games that maintains it through games' own target.  Checked:
#   - a, b, c read games v1 on LUN 1 and each writes a mark of its own
#     there (and on its LUN 0);
#   - image edit games --client maint: maint's logins to games' target
#     see the draft; it writes v2's content; image commit games: v2;
#   - a and b, online through the whole update (sessions held from
#     before the draft), still read v1 + their own mark on LUN 1, and so
#     do they after a reconnect; client show a --json: LUN 1 version 1,
#     current 2;
#   - client reset a --disk games: a reads exactly v2 on LUN 1 (its mark
#     gone), its LUN 0 still holds its mark; b stays on v1 + its mark;
#   - c keeps v1 + its mark through a mere login; its boot request (an
#     HTTP GET of the boot endpoint with its MAC, as its iPXE sends)
#     moves it to v2 (its mark gone); its LUN 0 keeps its mark;
#   - a second update made on a PC (the contract's MAINTENANCE): image
#     edit games --client b: b's LUN 1 serves the draft (on v2), its LUN
#     0 untouched, nobody else sees it; b writes; image commit: b reads
#     v3 on LUN 1, a stays on v2 (client show: v2, current 3);
#   - lab's versions unchanged (image versions lab --json), every PC's
#     LUN 0 still on lab v1, lab's and games' golden files unchanged
#     (sha256) throughout; the daemon stops cleanly.
. "$(dirname "$0")/../lib/common.sh"
for tool in qemu-img qemu-io jq curl cmp sha256sum; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

STATE=$tmpdir/state
P=iqn.2024-01.test.pristine
A=$P:game-a B=$P:game-b C=$P:game-c MAINT=$P:game-maint
MAC_C=52:54:00:00:17:33
LAB=$tmpdir/lab.raw GAMES=$tmpdir/games.raw
LABT=iqn.2026-11.org.pristine:lab GAMEST=iqn.2026-11.org.pristine:games
MIB=8

make_image "$LAB" $MIB
make_image "$GAMES" $MIB
patch "$GAMES" $((1 << 20)) 65536 0x31		# v1's content, where v2 differs
SHA_LAB=$(sha256sum <"$LAB") SHA_GAMES=$(sha256sum <"$GAMES")
golden_untouched() {
	[ "$(sha256sum <"$LAB")" = "$SHA_LAB" ] || fail "lab's golden file changed"
	[ "$(sha256sum <"$GAMES")" = "$SHA_GAMES" ] || fail "games' golden file changed"
	echo "    ok: lab's and games' golden files unchanged (sha256)"
}
# The contents each PC must read: v1 and v2 of games, each with or
# without a PC's mark (64 KiB at 4 MiB, a byte of its own), and lab with
# a PC's mark (at 2 MiB).
cp "$GAMES" "$tmpdir/v2.raw"
patch "$tmpdir/v2.raw" $((1 << 20)) 65536 0x32
patch "$tmpdir/v2.raw" $((6 << 20)) 65536 0x32
declare -A MARK=([a]=0x41 [b]=0x42 [c]=0x43)
for pc in a b c; do
	cp "$GAMES" "$tmpdir/v1-$pc.raw"
	patch "$tmpdir/v1-$pc.raw" $((4 << 20)) 65536 "${MARK[$pc]}"
	cp "$LAB" "$tmpdir/lab-$pc.raw"
	patch "$tmpdir/lab-$pc.raw" $((2 << 20)) 65536 "${MARK[$pc]}"
done

PORT=$(free_port)
BOOTPORT=$(free_port)
cat >"$tmpdir/pristine.conf" <<EOF
[server]
listen = 127.0.0.1:$PORT
state = $STATE
boot-listen = 127.0.0.1:$BOOTPORT
nop-interval = 0

[defaults]
enroll = deny
policy = persistent

[image lab]
path = $LAB
disks = games

[image games]
path = $GAMES

[client a]
initiator = $A
image = lab

[client b]
initiator = $B
image = lab

[client c]
initiator = $C
mac = $MAC_C
image = lab
disks = games:discard-on-boot

[client maint]
initiator = $MAINT
image = games
EOF
start_daemon_conf "$tmpdir/pristine.conf"
wait_boot_endpoint
echo "pristined: iSCSI 127.0.0.1:$PORT, boot endpoint 127.0.0.1:$BOOTPORT; lab with games on LUN 1"

declare -A INI=([a]=$A [b]=$B [c]=$C [maint]=$MAINT)
# lun_same PC LUN REF [TARGET]: PC reads exactly the file REF on LUN of
# TARGET (default lab's), in a session of its own (qemu-img).
lun_same() {
	local tgt=${4:-$LABT}
	rm -f "$tmpdir/seen.raw"
	timeout -k 5 120 qemu-img convert --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$tgt,lun=$2,initiator-name=${INI[$1]}" \
		-O raw "$tmpdir/seen.raw" >"$tmpdir/dump.log" 2>&1 ||
		{ cat "$tmpdir/dump.log"; tail -n 20 "$DLOG"; fail "qemu-img read of LUN $2 as $1 failed"; }
	cmp -s "$tmpdir/seen.raw" "$3" || fail "$1 does not read $(basename "$3") on LUN $2 of $tgt"
	echo "    ok: $1 reads $(basename "$3") on LUN $2 of ${tgt#iqn.2026-11.org.pristine:}"
}
# lun_write PC LUN OFFSET BYTE [TARGET]: PC writes 64 KiB of BYTE at
# OFFSET of LUN (qemu-io; its errors and mismatches fail the test).
lun_write() {
	local tgt=${5:-$LABT} out
	out=$(timeout -k 5 60 qemu-io -c "write -P $4 $3 64k" --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$tgt,lun=$2,initiator-name=${INI[$1]}" 2>&1) ||
		{ echo "$out"; fail "qemu-io write as $1 on LUN $2 failed"; }
	if echo "$out" | grep -E -i -q 'fail|error|cannot'; then echo "$out"; fail "qemu-io write as $1 on LUN $2: $out"; fi
}
# disk PC LUN JQ: over that LUN's entry of client show PC --json.
disk() { ctl --json client show "$1" | jq -r --argjson l "$2" ".disks[] | select(.lun == \$l) | $3"; }
lun1_at() {	# PC VERSION CURRENT
	local got
	got=$(disk "$1" 1 '"\(.image) v\(.version) current \(.current_version)"')
	[ "$got" = "games v$2 current $3" ] || fail "client show $1: LUN 1 is '$got', expected games v$2 current $3"
	echo "    ok: client show $1: LUN 1 $got"
}
lun0_on_v1() {
	local pc got
	for pc in a b c; do
		got=$(disk "$pc" 0 '"\(.image) v\(.version)"')
		[ "$got" = "lab v1" ] || fail "client show $pc: LUN 0 is '$got', not lab v1"
	done
	echo "    ok: LUN 0 of a, b and c on lab v1"
}

echo "== a, b, c read games v1 on LUN 1 and write their marks (LUN 1 and LUN 0)"
ctl --json client show c | jq -c '.disks[] | {lun, image, policy, version, current_version, from}'
[ "$(disk a 1 '.policy + " " + .from')" = "overlay group" ] || fail "a's LUN 1 is not the group's overlay disk"
[ "$(disk c 1 '.image + " " + .policy')" = "games discard-on-boot" ] || fail "c's LUN 1 is not games, discard-on-boot"
for pc in a b c; do
	lun_same $pc 1 "$GAMES"
	lun_write $pc 1 4M "${MARK[$pc]}"
	lun_write $pc 0 2M "${MARK[$pc]}"
	lun_same $pc 1 "$tmpdir/v1-$pc.raw"
	lun_same $pc 0 "$tmpdir/lab-$pc.raw"
done
LABVERS=$(ctl --json image versions lab | jq -c '{current, versions, draft, v: [.version_list[].version]}')
echo "    lab's versions: $LABVERS"
lun1_at a 1 1

echo "== a and b stay online (sessions held on LUN 1 from now on)"
cat >"$tmpdir/hold.py" <<'PY'
# hold.py PORT TARGET LUN NAME=INITIATOR...: one session per PC on LUN,
# "READY" once all are in; each stdin line "cmp NAME FILE" reads the whole
# LUN in that PC's session and answers "SAME NAME" or "DIFF NAME ...";
# at EOF (or 300 s) every session logs out.
import os, select, sys, time
sys.path.insert(0, os.path.join(os.environ["TOP"], "tests", "lib"))
import iscsi_initiator as I
port, target, lun = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sess = {}
for arg in sys.argv[4:]:
    name, ini = arg.split("=", 1)
    s = I.Session("127.0.0.1", port, ini, target_name=target, lun=lun, timeout=30)
    s.login()
    s.ready()
    sess[name] = s
print("READY", flush=True)
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    r, _, _ = select.select([sys.stdin], [], [], 1.0)
    if not r:
        continue
    line = sys.stdin.readline()
    if not line:
        break
    _, name, path = line.split()
    want = open(path, "rb").read()
    chunk, bad = 256 * 1024, None
    try:
        for off in range(0, len(want), chunk):
            t = sess[name].read(off // 512, min(chunk, len(want) - off) // 512)
            if t.status != 0 or bytes(t.data) != want[off:off + chunk]:
                bad = "bytes %d.. differ (status %r)" % (off, t.status)
                break
    except I.ISCSIError as e:
        bad = "error: %s" % e
    print("DIFF %s %s" % (name, bad) if bad else "SAME %s" % name, flush=True)
for s in sess.values():
    s.logout()
PY
coproc HOLD { exec python3 "$tmpdir/hold.py" "$PORT" "$LABT" 1 "a=$A" "b=$B" 2>&1; }
HPID=$HOLD_PID HIN=${HOLD[1]}
read -r -t 60 line <&"${HOLD[0]}" || fail "the held sessions of a and b did not start"
[ "$line" = READY ] || fail "held sessions: $line"
held_reads() {	# PC FILE: the held session of PC reads FILE on LUN 1
	local line
	echo "cmp $1 $2" >&"$HIN"
	read -r -t 120 line <&"${HOLD[0]}" || fail "no answer from $1's held session"
	[ "$line" = "SAME $1" ] || fail "$1's held session does not read $(basename "$2"): $line"
	echo "    ok: $1, online, reads $(basename "$2") on LUN 1"
}
held_reads a "$tmpdir/v1-a.raw"
held_reads b "$tmpdir/v1-b.raw"

echo "== the update: a draft of games, maint writes v2 through games' target, commit"
ctl_ok image edit games --client maint
lun_same maint 0 "$GAMES" "$GAMEST"
lun_write maint 0 1M 0x32 "$GAMEST"
lun_write maint 0 6M 0x32 "$GAMEST"
lun_same maint 0 "$tmpdir/v2.raw" "$GAMEST"
held_reads a "$tmpdir/v1-a.raw"
ctl_ok image commit games -m "games v2: the weekly update"
[ "$(vjson games '.current, .versions' | tr '\n' ' ')" = "2 2 " ] || fail "games: v2 is not current after the commit"
golden_untouched

echo "== a and b keep games v1 (online, then after a reconnect)"
held_reads a "$tmpdir/v1-a.raw"
held_reads b "$tmpdir/v1-b.raw"
eval "exec $HIN>&-"
wait "$HPID" || fail "the held sessions did not log out cleanly"
lun_same a 1 "$tmpdir/v1-a.raw"
lun_same b 1 "$tmpdir/v1-b.raw"
lun1_at a 1 2
lun1_at b 1 2
lun0_on_v1

echo "== client reset a --disk games: a moves to v2, its LUN 0 untouched; b stays on v1"
ctl_ok client reset a --disk games
lun_same a 1 "$tmpdir/v2.raw"
lun_same a 0 "$tmpdir/lab-a.raw"
lun1_at a 2 2
lun_same b 1 "$tmpdir/v1-b.raw"
lun1_at b 1 2

echo "== c (discard-on-boot) keeps v1 through a login, moves to v2 at its boot request"
lun_same c 1 "$tmpdir/v1-c.raw"
lun1_at c 1 2
ans=$(curl -s --max-time 20 "http://127.0.0.1:$BOOTPORT/boot.ipxe?mac=${MAC_C//:/-}&uuid=&ip=") ||
	fail "the boot endpoint did not answer c's boot request"
echo "$ans" | sed 's/^/    | /'
echo "$ans" | grep -q "^set initiator-iqn $C\$" && echo "$ans" | grep -q "^sanboot iscsi:.*:$LABT " ||
	fail "c's boot request was not answered with its sanboot script"
lun_same c 1 "$tmpdir/v2.raw"
lun_same c 0 "$tmpdir/lab-c.raw"
lun1_at c 2 2
lun_same b 1 "$tmpdir/v1-b.raw"

echo "== a second update made on a PC: b maintains games at its own LUN 1 (v3)"
ctl_ok image edit games --client b
[ "$(disk b 1 '.draft')" = true ] || fail "client show b: LUN 1 does not say it serves the draft"
lun_same b 1 "$tmpdir/v2.raw"		# the draft, on v2 (b's own v1 disk kept aside)
lun_write b 1 7M 0x33
cp "$tmpdir/v2.raw" "$tmpdir/v3.raw"
patch "$tmpdir/v3.raw" $((7 << 20)) 65536 0x33
lun_same b 1 "$tmpdir/v3.raw"
lun_same b 0 "$tmpdir/lab-b.raw"
lun_same a 1 "$tmpdir/v2.raw"		# the draft is b's alone
ctl_ok image commit games -m "games v3: made on b"
[ "$(vjson games '.current, .versions' | tr '\n' ' ')" = "3 3 " ] || fail "games: v3 is not current after the commit"
lun_same b 1 "$tmpdir/v3.raw"		# b moved to what it made, its v1 mark gone
lun1_at b 3 3
lun_same b 0 "$tmpdir/lab-b.raw"
lun_same a 1 "$tmpdir/v2.raw"		# a stays on v2 until its reset
lun1_at a 2 3
golden_untouched

echo "== the system disk: lab's versions and every PC's LUN 0 unchanged"
got=$(ctl --json image versions lab | jq -c '{current, versions, draft, v: [.version_list[].version]}')
[ "$got" = "$LABVERS" ] || fail "lab's versions changed: $got (was $LABVERS)"
echo "    ok: lab's versions: $got"
lun0_on_v1
lun_same b 0 "$tmpdir/lab-b.raw"
golden_untouched

daemon_alive
stop_daemon
echo PASS
