#!/usr/bin/env bash
# tests/disks/test_xdisk_lab.sh - the extra disks themselves (src/lab/xdisk.c)
# against a live pristined started from a configuration file: a group
# attachment ([image lab] disks = games data:read-only) and a PC's own
# ([client pc1] disks = scratch), seen through the project's Python
# initiator (tests/disks/xdisk_io.py):
#   - REPORT LUNS of pc1 lists 0 1 2 3, of pc2 (no scratch) 0 1 2;
#   - data pc1 writes on LUN 1 lands in STATE/disks/games/, not in its boot
#     overlay (LUN 0 still reads the golden image); pc2's LUN 1 does not
#     see it; the golden file of games never changes (sha256);
#   - the read-only LUN 2 refuses a write with DATA PROTECT, data.raw
#     unchanged;
#   - a restart keeps pc1's overlay on games at LUN 1;
#   - pristinectl client reset pc1 --disk games discards that disk only
#     (LUN 3's data stays, LUN 1 reads the golden image again);
#   - a quota per disk: pc1's own scratch (disks = scratch::1M) refuses
#     writes past 1 MiB with SPACE ALLOCATION FAILED WRITE PROTECT, pc2's
#     games (no quota) takes the whole 4 MiB.
. "$(dirname "$0")/../lib/common.sh"

CTL=$BUILD/pristinectl
[ -x "$CTL" ] || skip "build/pristinectl not built (make)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

STATE=$tmpdir/state
P=iqn.2024-01.test.xdisk T=iqn.2026-11.org.pristine:lab
for i in lab games data scratch; do make_image "$tmpdir/$i.raw" 4; done
sum_games=$(sha256sum <"$tmpdir/games.raw")
sum_data=$(sha256sum <"$tmpdir/data.raw")
PORT=$(free_port)
cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
state = $STATE
nop-interval = 0

[defaults]
enroll = deny

[image lab]
path = $tmpdir/lab.raw
target = $T
disks = games data:read-only

[image games]
path = $tmpdir/games.raw

[image data]
path = $tmpdir/data.raw

[image scratch]
path = $tmpdir/scratch.raw

[client pc1]
initiator = $P:pc1
image = lab
disks = scratch::1M

[client pc2]
initiator = $P:pc2
image = lab
CONF

# xd PC ACTION ARGS...: one session of PC on lab's target (xdisk_io.py).
xd() {
	local pc=$1
	shift
	timeout 30 python3 "$TOP/tests/disks/xdisk_io.py" "$PORT" "$T" "$P:$pc" "$@" 2>"$tmpdir/xd.err" ||
		{ cat "$tmpdir/xd.err"; fail "xd $pc $*"; }
}
expect() {	# expect WANTED ACTION...
	local want=$1 got
	shift
	got=$(xd "$@")
	[ "$got" = "$want" ] || fail "$*: got '$got', wanted '$want'"
}

start_daemon_conf "$tmpdir/p.conf"
echo "pristined on port $PORT"

echo "== REPORT LUNS"
expect "0 1 2 3" pc1 luns
expect "0 1 2" pc2 luns

echo "== LUN 1 (games, overlay): pc1's writes in STATE/disks/games/"
expect GOOD pc1 write 1 a5
expect same pc1 read 1 a5
ls "$STATE/disks/games/" | grep -q pc1 || { ls -lR "$STATE/disks"; fail "no overlay of pc1 in STATE/disks/games/"; }
[ -n "$(find "$STATE/disks/games" -type f -size +0)" ] || fail "STATE/disks/games/ holds nothing written"
expect LBA000000000000 pc1 gold 0    # its boot disk: the golden lab
expect LBA000000000000 pc1 gold 1
expect differs pc2 read 1 a5         # another PC: its own disk on games
[ "$(sha256sum <"$tmpdir/games.raw")" = "$sum_games" ] || fail "games.raw changed"

echo "== LUN 2 (data, read-only): DATA PROTECT"
expect "SENSE KEY 7" pc1 write 2 5a
expect differs pc1 read 2 5a
[ "$(sha256sum <"$tmpdir/data.raw")" = "$sum_data" ] || fail "data.raw changed"
[ ! -e "$STATE/disks/data/" ] || [ -z "$(find "$STATE/disks/data" -type f)" ] ||
	fail "a read-only disk has an overlay"

echo "== LUN 3 (scratch, its own)"
expect GOOD pc1 write 3 3c

echo "== restart: the overlays stay"
stop_daemon
start_daemon_conf "$tmpdir/p.conf"
expect "0 1 2 3" pc1 luns
expect same pc1 read 1 a5
expect same pc1 read 3 3c

echo "== reset --disk games: that disk only"
"$CTL" --state "$STATE" client reset pc1 --disk games >"$tmpdir/ctl.out" 2>&1 ||
	{ cat "$tmpdir/ctl.out"; fail "client reset pc1 --disk games"; }
expect differs pc1 read 1 a5
expect LBA000000000000 pc1 gold 1
expect same pc1 read 3 3c
[ "$(sha256sum <"$tmpdir/games.raw")" = "$sum_games" ] || fail "games.raw changed"

echo "== a quota per disk"
got=$(xd pc1 fill 3)
echo "pc1 LUN 3 (scratch, quota 1 MiB): $got"
case $got in
"SENSE KEY 7 ASC 27/07 after "*" KiB") ;;
*) fail "pc1's scratch (quota 1 MiB) took writes past its quota: $got" ;;
esac
kib=${got##*after }
kib=${kib% KiB}
[ "$kib" -le 1024 ] && [ "$kib" -ge 256 ] || fail "pc1's scratch refused at $kib KiB, not at its 1 MiB quota"
got=$(xd pc2 fill 1)
echo "pc2 LUN 1 (games, no quota): $got"
[ "$got" = "GOOD 4" ] || fail "pc2's games (no quota) refused a write: $got"
[ "$(sha256sum <"$tmpdir/games.raw")" = "$sum_games" ] || fail "games.raw changed"
stop_daemon
echo "PASS: extra disks of the lab"
