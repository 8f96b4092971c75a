#!/usr/bin/env bash
# tests/disks/test_xdisk_rbd.sh - an extra disk whose image is on Ceph RBD
# (store.h xdisk_where: a PC's overlay on it is a clone in the image's own
# store) beside a local boot image, against a throwaway single-node
# cluster (tests/lib/ceph.sh, memstore):
#   - [image lab] (a local file) disks = games, [image games] rbd =
#     POOL/games@v1; pc1 and pc2 see LUN 0 and 1;
#   - pc1's write on LUN 1 reads back; pc2's LUN 1 does not see it; the
#     pool gains an image for pc1's disk, nothing appears in STATE/disks/;
#   - a restart keeps pc1's data on LUN 1;
#   - client reset pc1 --disk games: LUN 1 reads the snapshot again;
#   - the snapshot's content never changes (rbd export | sha256sum).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon sha256sum jq

STATE=$tmpdir/state
P=iqn.2024-01.test.xrbd T=iqn.2026-11.org.pristine:lab
MIB=8

t0=$SECONDS
ceph_start "$tmpdir/ceph" memstore
echo "ceph up in $((SECONDS - t0)) s: mon $CEPH_MON, pool $CEPH_POOL"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
make_image "$tmpdir/lab.raw" "$MIB"
make_image "$tmpdir/games.raw" "$MIB"
timeout 60 rbd import --no-progress "$tmpdir/games.raw" "$CEPH_POOL/games" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/games@v1" >/dev/null || fail "rbd snap create"
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/games@v1" - | sha256sum; }
SNAP_SHA=$(snap_sha)
[ "$SNAP_SHA" = "$(sha256sum <"$tmpdir/games.raw")" ] || fail "the snapshot is not the imported file"

cat >"$tmpdir/pristine.conf" <<EOF
[server]
state = $STATE
ceph-conf = $PCONF
ceph-id = pristine
nop-interval = 0

[defaults]
enroll = deny

[image lab]
path = $tmpdir/lab.raw
target = $T
disks = games

[image games]
rbd = $CEPH_POOL/games@v1

[client pc1]
initiator = $P:pc1
image = lab

[client pc2]
initiator = $P:pc2
image = lab
EOF

xd() {	# xd PC ACTION ARGS...: one session (tests/disks/xdisk_io.py)
	local pc=$1
	shift
	timeout 60 python3 "$TOP/tests/disks/xdisk_io.py" "$PORT" "$T" "$P:$pc" "$@" 2>"$tmpdir/xd.err" ||
		{ cat "$tmpdir/xd.err"; tail -n 30 "$DLOG"; fail "xd $pc $*"; }
}
expect() {	# expect WANTED PC ACTION...
	local want=$1 got
	shift
	got=$(xd "$@")
	[ "$got" = "$want" ] || { tail -n 30 "$DLOG"; fail "$*: got '$got', wanted '$want'"; }
}
pool_images() { timeout 30 rbd ls "$CEPH_POOL" | sort; }

pool_images >"$tmpdir/pool.before"
start_daemon_conf_port
echo "pristined on port $PORT"

echo "== LUNs"
expect "0 1" pc1 luns
expect "0 1" pc2 luns

echo "== pc1 writes on LUN 1 (games on RBD): a clone of its own"
expect GOOD pc1 write 1 a5
expect same pc1 read 1 a5
expect LBA000000000000 pc1 gold 0
expect differs pc2 read 1 a5
pool_images >"$tmpdir/pool.after"
comm -13 "$tmpdir/pool.before" "$tmpdir/pool.after" | grep -q . ||
	{ cat "$tmpdir/pool.after"; fail "no image in the pool for the PCs' disks on games"; }
[ -z "$(find "$STATE/disks" -mindepth 2 2>/dev/null)" ] || { find "$STATE/disks"; fail "an RBD image's disk in STATE/disks/"; }

echo "== restart: kept"
stop_daemon
start_daemon_conf_port
expect same pc1 read 1 a5

echo "== reset --disk games"
"$CTL" --state "$STATE" client reset pc1 --disk games >"$tmpdir/ctl.out" 2>&1 ||
	{ cat "$tmpdir/ctl.out"; fail "client reset pc1 --disk games"; }
expect differs pc1 read 1 a5
expect LBA000000000000 pc1 gold 1
stop_daemon
[ "$(snap_sha)" = "$SNAP_SHA" ] || fail "the snapshot of games changed"
echo "PASS: an extra disk on RBD"
