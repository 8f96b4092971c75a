#!/usr/bin/env bash
# Issue 14, first step: a golden image on Ceph RBD, against a real
# single-node cluster (tests/lib/ceph.sh) started and stopped here.
#   an RBD image filled with a known pattern (rbd import), snapshotted,
#   then its head changed (qemu-io through QEMU's rbd driver), so that
#   reading the snapshot and not the head is seen; pristined -c serves
#   rbd = POOL/IMAGE@SNAP as client.pristine (cephx, a key with
#   read-write caps: the daemon's own code is what must not write);
#   clients read it back byte for byte through iSCSI (qemu-img convert);
#   a client's writes (qemu-io) are its own, another client reads the
#   golden; a draft on it is committed as v2 and read back, flattened
#   (into a flat RBD image: tests/ceph/test_rbd_cycle.sh has the rest of
#   the cycle in Ceph), v1 exported, rolled back to; image show and
#   status name rbd:POOL/IMAGE@SNAP; while the daemon serves, Ceph lists
#   no watcher on the image (a writable open registers one); afterwards
#   the snapshot's and the head's content (rbd export | sha256sum) and
#   every data object of the golden (name, size, mtime from the OSD: a
#   write would change them; the pool itself now also holds the overlays of
#   clients and drafts) are as before; a restart serves the same versions.
#   Then the errors: another snapshot under those versions, an image or
#   snapshot that is not there, a wrong key and a cluster nobody answers
#   for (its monitors and the identity named) stop
#   the start with a clear message in bounded time.
# CEPH_OBJECTSTORE=bluestore runs the OSD on a sparse file instead of
# memstore (both pass; memstore starts in ~6 s here, bluestore ~10 s).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-img qemu-io jq sha256sum cmp

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
MIB=16

t0=$SECONDS
ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"   # bluestore: on a sparse file
echo "ceph up in $((SECONDS - t0)) s: mon $CEPH_MON, pool $CEPH_POOL"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')

make_image "$tmpdir/golden.raw" "$MIB"
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"
# The head moves on after the snapshot: 64 KiB of 0xee at 0.
timeout 30 qemu-io -f raw -c "write -P 0xee 0 64k" \
	"rbd:$CEPH_POOL/golden:conf=$CEPH_CONF:id=admin" >/dev/null || fail "qemu-io on the head"
cp "$tmpdir/golden.raw" "$tmpdir/head.raw"
patch "$tmpdir/head.raw" 0 65536 0xee
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/golden@v1" - | sha256sum; }
head_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/golden" - | sha256sum; }
SNAP_SHA=$(snap_sha)
HEAD_SHA=$(head_sha)
[ "$SNAP_SHA" = "$(sha256sum <"$tmpdir/golden.raw")" ] || fail "rbd export of the snapshot is not the imported file"
[ "$HEAD_SHA" = "$(sha256sum <"$tmpdir/head.raw")" ] || fail "rbd export of the head is not the file with its change"

# What the OSD says of every data object of the golden: name, size, mtime.
GPREFIX=$(timeout 30 rbd info --format json "$CEPH_POOL/golden" | jq -r .block_name_prefix)
objects() {
	ceph_data_objects "$GPREFIX"
}
objects >"$tmpdir/objects.before"
grep -q '^rbd_data\.' "$tmpdir/objects.before" || { cat "$tmpdir/objects.before"; fail "no rbd_data objects listed"; }

cat >"$tmpdir/pristine.conf" <<EOF
[server]
state = $STATE
ceph-conf = $PCONF
ceph-id = pristine

[image golden]
rbd = $CEPH_POOL/golden@v1
EOF
start_daemon_conf_port
grep -q "ceph: connected as client.pristine" "$DLOG" || { cat "$DLOG"; fail "no connection logged"; }
grep -q "LUN 0: rbd:$CEPH_POOL/golden@v1, $((MIB << 20)) bytes" "$DLOG" || { cat "$DLOG"; fail "the target's source is not logged as rbd:"; }

echo "== clients read the snapshot, not the head"
same $P:pc1 "$tmpdir/golden.raw"
[ "$(sha256sum <"$tmpdir/seen.raw")" = "$SNAP_SHA" ] || fail "the hash read through iSCSI is not the snapshot's"

echo "== Ceph lists no watcher while the daemon has the image open"
timeout 30 rbd status "$CEPH_POOL/golden" >"$tmpdir/status.txt" 2>&1 || { cat "$tmpdir/status.txt"; fail "rbd status"; }
cat "$tmpdir/status.txt"
grep -q "Watchers: none" "$tmpdir/status.txt" || fail "a watcher on the golden image: opened for writing?"

echo "== a client's writes are its own"
qio $P:pc1 -c "write -P 0x5a 1M 64k"
qio $P:pc1 -r -c "read -P 0x5a 1M 64k"
same $P:pc2 "$tmpdir/golden.raw"
cp "$tmpdir/golden.raw" "$tmpdir/pc1.raw"
patch "$tmpdir/pc1.raw" $((1 << 20)) 65536 0x5a
same $P:pc1 "$tmpdir/pc1.raw"

echo "== image show and status say where the golden lives"
ctl_ok --json image show golden
[ "$(echo "$OUT" | jq -r .source)" = "rbd:$CEPH_POOL/golden@v1" ] || fail "image show: source is not rbd:"
ctl_ok --json status
[ "$(echo "$OUT" | jq -r '.targets[0].path')" = "rbd:$CEPH_POOL/golden@v1" ] || fail "status: path is not rbd:"

echo "== a version on top of the RBD golden"
ctl_ok image edit golden --client $P:maint
qio $P:maint -c "write -P 0xcd 8M 4k"
ctl_ok image commit golden -m "on rbd"
cp "$tmpdir/golden.raw" "$tmpdir/v2.raw"
patch "$tmpdir/v2.raw" $((8 << 20)) 4096 0xcd
same $P:pc3 "$tmpdir/v2.raw"
same $P:pc2 "$tmpdir/golden.raw"     # keeps v1 until its reset
ctl_ok image flatten golden
FLAT=$(vjson golden '.version_list[1].flat_file')
case $FLAT in "rbd:$CEPH_POOL"/pristine.*@v) ;; *) fail "v2 is not flattened into an RBD image: $FLAT";; esac
timeout 60 rbd export --no-progress "${FLAT#rbd:}" "$tmpdir/flat.raw" >/dev/null || fail "rbd export of $FLAT"
cmp "$tmpdir/flat.raw" "$tmpdir/v2.raw" || fail "the flat copy of v2 (read through the RBD source) differs from v2"
same $P:pc4 "$tmpdir/v2.raw"
ctl_ok image export golden 1 "$tmpdir/export-v1.raw"
cmp "$tmpdir/export-v1.raw" "$tmpdir/golden.raw" || fail "the export of v1 (the RBD snapshot) differs"
ctl_ok image rollback golden 1
same $P:pc5 "$tmpdir/golden.raw"
daemon_alive
stop_daemon

echo "== a restart finds its versions on the same RBD source"
start_daemon_conf_port
same $P:pc3 "$tmpdir/v2.raw"         # still on v2
same $P:pc6 "$tmpdir/golden.raw"     # v1 is current
stop_daemon

echo "== the golden is as it was, in Ceph's own view"
[ "$(snap_sha)" = "$SNAP_SHA" ] || fail "the snapshot's content changed"
[ "$(head_sha)" = "$HEAD_SHA" ] || fail "the image head's content changed"
objects >"$tmpdir/objects.after"
diff "$tmpdir/objects.before" "$tmpdir/objects.after" || fail "a data object of the golden changed (size or mtime)"
echo "    ok: $(wc -l <"$tmpdir/objects.after") objects unchanged"

expect_start_error() {
	local re=$1 rc=0 t=$SECONDS
	PORT=$(free_port)
	sed -i "/^listen = /d; /^\[server\]/a listen = 127.0.0.1:$PORT" "$tmpdir/pristine.conf"
	timeout 60 "$PRISTINED" -c "$tmpdir/pristine.conf" >"$tmpdir/err.log" 2>&1 || rc=$?
	cat "$tmpdir/err.log"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "pristined did not fail at start (rc $rc)"
	grep -E -q "$re" "$tmpdir/err.log" || fail "no message matching /$re/"
	grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/err.log" && fail "sanitizer report"
	echo "    ok: refused in $((SECONDS - t)) s"
}
echo "== errors: another snapshot under the same versions"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v2" || fail "rbd snap create v2"
sed -i "s|^rbd = .*|rbd = $CEPH_POOL/golden@v2|" "$tmpdir/pristine.conf"
expect_start_error "image golden: its source rbd:$CEPH_POOL/golden@v2 changed since its versions were made on it"
rbd snap rm --no-progress "$CEPH_POOL/golden@v2" >/dev/null 2>&1 || fail "rbd snap rm v2"

echo "== errors: no such snapshot, no such image"
sed -i "s|^rbd = .*|rbd = $CEPH_POOL/golden@nosuch|" "$tmpdir/pristine.conf"
expect_start_error "rbd:$CEPH_POOL/golden@nosuch: cannot open the image at its snapshot read-only: No such file"
sed -i "s|^rbd = .*|rbd = $CEPH_POOL/nosuch|" "$tmpdir/pristine.conf"
expect_start_error "rbd:$CEPH_POOL/nosuch: cannot open the image read-only: No such file"

echo "== errors: a key the cluster does not know"
ceph-authtool --create-keyring "$tmpdir/wrong.keyring" --gen-key -n client.pristine >/dev/null || fail "ceph-authtool"
sed -e "s|^keyring = .*|keyring = $tmpdir/wrong.keyring|" "$PCONF" >"$tmpdir/wrong.conf"
sed -i "s|^ceph-conf = .*|ceph-conf = $tmpdir/wrong.conf|; s|^rbd = .*|rbd = $CEPH_POOL/golden@v1|" "$tmpdir/pristine.conf"
expect_start_error "cannot connect to the Ceph cluster at v2:$CEPH_MON .* as client.pristine \(key from keyring $tmpdir/wrong.keyring\): .*check the key in its keyring"

echo "== errors: a keyring that does not exist"
sed -e "s|^keyring = .*|keyring = $tmpdir/nosuch.keyring|" "$PCONF" >"$tmpdir/nokey.conf"
sed -i "s|^ceph-conf = .*|ceph-conf = $tmpdir/nokey.conf|" "$tmpdir/pristine.conf"
expect_start_error "cannot connect to the Ceph cluster at v2:$CEPH_MON .* as client.pristine \(key from keyring $tmpdir/nosuch.keyring\): .*no keyring with its key"

echo "== errors: a ceph-conf that cannot be read"
sed -i "s|^ceph-conf = .*|ceph-conf = $tmpdir/nosuch.conf|" "$tmpdir/pristine.conf"
expect_start_error "ceph-conf $tmpdir/nosuch.conf cannot be read"

echo "== errors: a cluster nobody answers for"
dead=$(free_port)
sed -e "s|^mon host = .*|mon host = v2:127.0.0.1:$dead|" "$PCONF" >"$tmpdir/dead.conf"
sed -i "s|^ceph-conf = .*|ceph-conf = $tmpdir/dead.conf|" "$tmpdir/pristine.conf"
t=$SECONDS
expect_start_error "cannot connect to the Ceph cluster at v2:127.0.0.1:$dead .* as client.pristine"
[ $((SECONDS - t)) -le 40 ] || fail "the start took $((SECONDS - t)) s to give up"
echo "PASS"
