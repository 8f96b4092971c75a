#!/usr/bin/env bash
# Issue 14: images put on Ceph RBD at runtime, against a real single-node
# cluster (tests/lib/ceph.sh) started and stopped here.
#   image add NAME --rbd POOL/IMAGE@SNAP serves an existing snapshot at
#   once (clients read it byte for byte through iSCSI, qemu-img convert);
#   image import NAME FILE --rbd POOL converts a qcow2 (made with qemu-img
#   from a known raw file) into a new RBD image pristine owns
#   (pristine.import.NAME.*, snapshot v1 protected), read back byte for
#   byte; a client's writes land in its own overlay (its data image in rbd ls), not in the
#   imported image; a restart serves both again; a restart without
#   ceph-conf does not serve them (and says why) and one with it serves
#   them again; version delete of v1 is refused; a draft of the imported
#   image is a clone of its snapshot, committed as v2.
#   Crash safety: an interrupted import (its marker and its half-made RBD
#   image, as a crash leaves them; and a real kill -9 during an import)
#   is never served and its RBD image is removed at the next start.
#   Errors, each a clear message: no ceph-conf, a bad pool, no snapshot
#   named, no such snapshot, a name taken.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-img qemu-io jq sha256sum cmp

STATE=$tmpdir/state
P=iqn.2024-01.test.pristine
TL=iqn.2026-11.org.pristine:lab
TI=iqn.2026-11.org.pristine:imp

ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')

# lab: an RBD snapshot the admin made; imp: a qcow2 of other content.
make_image "$tmpdir/lab.raw" 8
timeout 60 rbd import --no-progress "$tmpdir/lab.raw" "$CEPH_POOL/lab" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/lab@s1" >/dev/null || fail "rbd snap create"
make_image "$tmpdir/imp.raw" 12
patch "$tmpdir/imp.raw" 0 4096 0x11
patch "$tmpdir/imp.raw" $((5 << 20)) 1048576 0
qemu-img convert -f raw -O qcow2 "$tmpdir/imp.raw" "$tmpdir/imp.qcow2" || fail "qemu-img convert to qcow2"
make_image "$tmpdir/local.raw" 1

write_conf() {   # write_conf yes|no: with or without ceph-conf
	{
		echo "[server]"
		echo "state = $STATE"
		if [ "$1" = yes ]; then
			echo "ceph-conf = $PCONF"
			echo "ceph-id = pristine"
		fi
		echo "[image local]"
		echo "path = $tmpdir/local.raw"
	} >"$tmpdir/pristine.conf"
}
start() {
	PORT=$(free_port)
	sed -i "/^listen = /d; /^\[server\]/a listen = 127.0.0.1:$PORT" "$tmpdir/pristine.conf"
	start_daemon_conf "$tmpdir/pristine.conf"
}
own_images() { timeout 30 rbd ls "$CEPH_POOL" | grep "^pristine\.import\." || true; }

write_conf yes
start
grep -q "ceph: connected as client.pristine" "$DLOG" || { cat "$DLOG"; fail "ceph-conf alone does not connect"; }

echo "== image add --rbd: an existing snapshot, served at once"
ctl_ok image add lab --rbd "$CEPH_POOL/lab@s1"
echo "$OUT" | grep -q "target $TL" || fail "image add --rbd: no target said"
ctl_ok --json image show lab
[ "$(echo "$OUT" | jq -r .source)" = "rbd:$CEPH_POOL/lab@s1" ] || fail "image show: source is not rbd:"
same $P:a1 "$tmpdir/lab.raw" "$TL"

echo "== image import --rbd: a qcow2 into a new RBD image"
ctl_ok image import imp "$tmpdir/imp.qcow2" --rbd "$CEPH_POOL"
ctl_ok --json image show imp
SRC=$(echo "$OUT" | jq -r .source)
case $SRC in "rbd:$CEPH_POOL"/pristine.import.imp.*@v1) ;; *) fail "imported source is $SRC";; esac
RIMG=${SRC#rbd:$CEPH_POOL/}
RIMG=${RIMG%@v1}
same $P:b1 "$tmpdir/imp.raw" "$TI"
timeout 30 rbd snap ls --format json "$CEPH_POOL/$RIMG" | jq -e '.[] | select(.name == "v1")' >/dev/null \
	|| fail "no snapshot v1 on $RIMG"
timeout 30 rbd info --format json "$CEPH_POOL/$RIMG@v1" | jq -e '.protected == "true"' >/dev/null \
	|| fail "$RIMG@v1 is not protected"
[ ! -e "$STATE/imported/imp.raw.tmp" ] && [ ! -e "$STATE/imported/imp.rbd-import" ] \
	|| { ls -la "$STATE/imported"; fail "the import left its files"; }
timeout 60 rbd export --no-progress "$CEPH_POOL/$RIMG@v1" "$tmpdir/rimg.raw" >/dev/null || fail "rbd export"
cmp "$tmpdir/rimg.raw" "$tmpdir/imp.raw" || fail "the RBD image's v1 is not the imported disk"
IMP_SHA=$(sha256sum <"$tmpdir/rimg.raw")
# sparse: the 1 MiB of zeros at 5 MiB is not written (4 MiB objects: object 1 holds 4-8 MiB, so
# only count the objects there are)
NOBJ=$(timeout 30 rados -p "$CEPH_POOL" ls | grep -c "^$(rbd info --format json "$CEPH_POOL/$RIMG" | jq -r .block_name_prefix)\.")
echo "    $RIMG: $NOBJ data objects"
[ "$NOBJ" -ge 1 ] && [ "$NOBJ" -le 3 ] || fail "$NOBJ data objects for a 12 MiB image of 4 MiB objects"

echo "== a client's writes land in its own overlay in Ceph"
GTARGET=$TI qio $P:b2 -c "write -P 0x77 2M 64k"
cp "$tmpdir/imp.raw" "$tmpdir/b2.raw"
patch "$tmpdir/b2.raw" $((2 << 20)) 65536 0x77
same $P:b2 "$tmpdir/b2.raw" "$TI"
same $P:b3 "$tmpdir/imp.raw" "$TI"
timeout 30 rbd ls "$CEPH_POOL" | tee "$tmpdir/ls.txt" | sed 's/^/    /'
grep -q "^pristine\..*\.v1\.iqn\.2024-01\.test\.pristine%3ab2\.[0-9a-f]*\.data$" "$tmpdir/ls.txt" || fail "no data image of b2's overlay in rbd ls"

echo "== errors are clear"
ctl_err 1 "already called lab" image add lab --rbd "$CEPH_POOL/lab@s1"
ctl_err 1 "already called imp" image import imp "$tmpdir/imp.qcow2" --rbd "$CEPH_POOL"
ctl_err 1 "no pool nopool" image import x "$tmpdir/imp.qcow2" --rbd nopool
ctl_err 1 "no pool nopool" image add x --rbd nopool/lab@s1
ctl_err 1 "name a snapshot" image add x --rbd "$CEPH_POOL/lab"
ctl_err 1 "no such image or snapshot" image add x --rbd "$CEPH_POOL/lab@nosuch"
ctl_err 1 "no such image or snapshot" image add x --rbd "$CEPH_POOL/nosuch@s1"
ctl_err 1 "v1|source" image delete imp 1
ctl_ok --json image list
[ "$(echo "$OUT" | jq '.images | length')" = 3 ] || fail "a refused add or import left an image: $OUT"
[ -z "$(own_images | grep -v "^$RIMG$")" ] || { own_images; fail "a refused import left an RBD image"; }

echo "== a version on the imported image: the draft is a clone of its snapshot"
ctl_ok image edit imp --client $P:maint
GTARGET=$TI qio $P:maint -c "write -P 0x42 0 4k"
ctl_ok image commit imp -m "v2 on rbd"
V2ROOT=$(vjson imp '.version_list[1].root')
case $V2ROOT in "rbd:$CEPH_POOL"/pristine.*.L1@v) ;; *) fail "v2's root is $V2ROOT";; esac
timeout 30 rbd info --format json "${V2ROOT#rbd:}" | jq -r .parent.image | grep -qx "$RIMG" \
	|| fail "v2 is not a clone of the imported image"
cp "$tmpdir/imp.raw" "$tmpdir/v2.raw"
patch "$tmpdir/v2.raw" 0 4096 0x42
same $P:b4 "$tmpdir/v2.raw" "$TI"
ctl_ok image rollback imp 1
daemon_alive
stop_daemon

echo "== a restart serves both again"
start
same $P:a2 "$tmpdir/lab.raw" "$TL"
same $P:b2 "$tmpdir/b2.raw" "$TI"
stop_daemon

echo "== without ceph-conf they are not served, and the log says why"
write_conf no
start
ctl_ok --json image list
[ "$(echo "$OUT" | jq -r '[.images[].name] | sort | join(",")')" = "local" ] || fail "images on RBD served without Ceph: $OUT"
grep -q "image lab: its source rbd:$CEPH_POOL/lab@s1 cannot be opened: the daemon is not connected to Ceph" "$DLOG" \
	|| { cat "$DLOG"; fail "no reason logged for lab"; }
ctl_err 1 "not connected to Ceph.*ceph-conf" image add x --rbd "$CEPH_POOL/lab@s1"
ctl_err 1 "not connected to Ceph.*ceph-conf" image import x "$tmpdir/imp.qcow2" --rbd "$CEPH_POOL"
stop_daemon
write_conf yes
start
same $P:b2 "$tmpdir/b2.raw" "$TI"
stop_daemon

echo "== an import a crash cut short is never served, its RBD image removed"
# as a crash leaves it: the marker, and an RBD image half written
timeout 30 rbd create --size 4M "$CEPH_POOL/pristine.import.half.0badf00d" || fail "rbd create"
printf '%s\n' "$CEPH_POOL/pristine.import.half.0badf00d" >"$STATE/imported/half.rbd-import"
start
ctl_ok --json image list
echo "$OUT" | jq -e '.images[] | select(.name == "half")' >/dev/null && fail "a half import is served"
timeout 30 rbd ls "$CEPH_POOL" | grep -q "pristine.import.half" && fail "the half-made RBD image was not removed"
[ -e "$STATE/imported/half.rbd-import" ] && fail "the marker was not removed"
grep -q "left by an interrupted import of image half, was removed" "$DLOG" || fail "the removal is not logged"

echo "== kill -9 during an import"
make_image "$tmpdir/big.raw" 96
qemu-img convert -f raw -O qcow2 "$tmpdir/big.raw" "$tmpdir/big.qcow2" || fail "qemu-img convert big"
ctl_ok image import big "$tmpdir/big.qcow2" --rbd "$CEPH_POOL" --no-wait
for _ in $(seq 1 3000); do
	[ -e "$STATE/imported/big.rbd-import" ] && break
	sleep 0.01
done
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=""
echo "    killed; rbd ls: $(own_images | tr '\n' ' ')"
start
ctl_ok --json image list
if echo "$OUT" | jq -e '.images[] | select(.name == "big")' >/dev/null; then
	echo "    the import had finished before the kill: served whole"
	same $P:c1 "$tmpdir/big.raw" iqn.2026-11.org.pristine:big
else
	[ -z "$(own_images | grep "^pristine\.import\.big\.")" ] || { own_images; grep -E "import|imported|blocklist|previous" "$DLOG" | tail -n 15; fail "a killed import left its RBD image"; }
	echo "    ok: not served, nothing left in Ceph"
fi
[ -e "$STATE/imported/big.rbd-import" ] && fail "the marker of the killed import is still there"
stop_daemon

echo "== the imported golden is as it was"
timeout 60 rbd export --no-progress "$CEPH_POOL/$RIMG@v1" - | sha256sum >"$tmpdir/after.sha"
[ "$(cat "$tmpdir/after.sha")" = "$IMP_SHA" ] || fail "the imported RBD image's v1 changed"
echo "PASS"
