#!/usr/bin/env bash
# Issue 14: an upgrade keeps a PC's overlay that an older pristine kept as
# an RBD clone named like the PC's DIR (pristine.<uid>.v<N>.<initiator>,
# no marker; lab/store_rbd.c legacy_clone_open).  Such a clone, made here
# by hand as the old design made it (golden@v1's clone, 64 KiB objects, no
# striping, layering + exclusive-lock + object-map + fast-diff +
# deep-flatten) and written through librbd, is served as it is: the PC
# reads the clone's pattern where it was written and the golden elsewhere,
# writes more and reads it back, and the daemon log names it.  The PC's
# next reset moves the clone to the RBD trash (held there by a clone of
# one of its snapshots made here), after which the PC reads the golden
# through an overlay in the new layout (a marker); once nothing holds it,
# the purge removes the old clone from the trash.  The golden's content
# and data objects never change.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-img qemu-io jq sha256sum cmp
ceph_fail_shows_log

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
ceph_golden_conf 8 "$STATE"
GPREFIX=$(timeout 30 rbd info --format json "$CEPH_POOL/golden" | jq -r .block_name_prefix)
ceph_data_objects "$GPREFIX" >"$tmpdir/objects.before"
[ -s "$tmpdir/objects.before" ] || fail "no data objects of the golden listed"
golden_unchanged() {
	[ "$(snap_sha)" = "$SHA" ] || fail "the golden snapshot's content changed ($1)"
	ceph_data_objects "$GPREFIX" | diff "$tmpdir/objects.before" - || fail "a data object of the golden changed ($1)"
	echo "    ok: golden unchanged ($1)"
}
trash_ours() { timeout 30 rbd trash ls "$CEPH_POOL" | awk '{print $2}' | grep '^pristine\.' | sort; }

echo "== an older pristine's overlay of pc1: an RBD clone named like its DIR"
start_daemon_conf_port
ctl_ok client add $P:pc1 --image golden
ctl_ok --json client show $P:pc1
OVL=$(echo "$OUT" | jq -r .overlay_dir)
case $OVL in "$CEPH_POOL"/pristine.*.v1.iqn.2024-01.test.pristine%3apc1) OVL=${OVL#*/} ;;
*) fail "pc1's overlay_dir is not its DIR in Ceph: $OVL" ;; esac
stop_daemon
[ -z "$(ovl_inst "$OVL")" ] || fail "pc1 has a marker before its first login"
timeout 30 rbd info "$CEPH_POOL/golden@v1" | grep -q 'protected: True' ||
	timeout 30 rbd snap protect "$CEPH_POOL/golden@v1" || fail "rbd snap protect"
timeout 60 rbd clone --object-size 64K --stripe-unit 64K --stripe-count 1 \
	--image-feature layering,exclusive-lock,object-map,fast-diff,deep-flatten \
	"$CEPH_POOL/golden@v1" "$CEPH_POOL/$OVL" || fail "rbd clone"
timeout -k 5 60 qemu-io -f raw -c "write -P 0x3c 1M 64k" -c "write -P 0xc3 5M 4k" \
	"rbd:$CEPH_POOL/$OVL:id=admin:conf=$CEPH_CONF" >"$tmpdir/qio.log" 2>&1 &&
	! grep -E -i -q 'fail|error' "$tmpdir/qio.log" || { cat "$tmpdir/qio.log"; fail "qemu-io write into the clone"; }
cp "$tmpdir/golden.raw" "$tmpdir/pc1.raw"
patch "$tmpdir/pc1.raw" $((1 << 20)) 65536 0x3c; patch "$tmpdir/pc1.raw" $((5 << 20)) 4096 0xc3
# A snapshot of the clone with a clone of its own (not pristine's name)
# keeps the clone in the trash after its reset until that one goes.
timeout 30 rbd snap create --no-progress "$CEPH_POOL/$OVL@pin" >/dev/null || fail "rbd snap create pin"
timeout 30 rbd snap protect "$CEPH_POOL/$OVL@pin" || fail "rbd snap protect pin"
timeout 30 rbd clone "$CEPH_POOL/$OVL@pin" "$CEPH_POOL/upgrade-pin" || fail "rbd clone of the pin"
golden_unchanged "the old clone written"

echo "== after the upgrade the PC reads its old overlay, writes more"
start_daemon_conf_port
same $P:pc1 "$tmpdir/pc1.raw"
grep -q "rbd $CEPH_POOL/$OVL: an overlay kept as an RBD clone (an older pristine)" "$DLOG" ||
	fail "the daemon log does not say it serves pc1's clone of an older pristine"
[ -z "$(ovl_inst "$OVL")" ] || fail "pc1 got a marker while its old clone is served"
qio $P:pc1 -c "write -P 0x5d 3M 4k" -c "write -P 0xd5 1M 4k"
patch "$tmpdir/pc1.raw" $((3 << 20)) 4096 0x5d; patch "$tmpdir/pc1.raw" $((1 << 20)) 4096 0xd5
qio $P:pc1 -r -c "read -P 0x5d 3M 4k" -c "read -P 0xd5 1M 4k" -c "read -P 0x3c $(((1 << 20) + 4096)) 61440"
same $P:pc1 "$tmpdir/pc1.raw"
timeout -k 5 60 qemu-img convert -f raw -O raw "rbd:$CEPH_POOL/$OVL:id=admin:conf=$CEPH_CONF" \
	"$tmpdir/clone.raw" && cmp "$tmpdir/clone.raw" "$tmpdir/pc1.raw" || fail "the PC's writes are not in its old clone"
golden_unchanged "the PC wrote into its old clone"

echo "== reset: the clone goes to the RBD trash, the PC gets an overlay in the new layout"
ctl_ok client reset $P:pc1
trash_ours | grep -Fx "$OVL" || { trash_ours; fail "pc1's old clone is not in the RBD trash after its reset"; }
timeout 30 rbd ls "$CEPH_POOL" | grep -Fx "$OVL" && fail "pc1's old clone is still listed by rbd ls"
same $P:pc1 "$tmpdir/golden.raw"
INST=$(ovl_inst "$OVL")
[ "${#INST}" -eq 16 ] || fail "pc1 has no marker with an instance after its reset (inst '$INST')"
[ "$(ovl_data "$OVL")" = "$OVL.$INST.data" ] || fail "pc1 has no data image $OVL.$INST.data"
qio $P:pc1 -c "write -P 0x77 2M 4k"
cp "$tmpdir/golden.raw" "$tmpdir/pc1.raw"; patch "$tmpdir/pc1.raw" $((2 << 20)) 4096 0x77
same $P:pc1 "$tmpdir/pc1.raw"
trash_ours | grep -Fx "$OVL" || fail "pc1's old clone left the trash while a clone of it exists"

echo "== once nothing holds it, the purge removes the old clone"
timeout 60 rbd rm --no-progress "$CEPH_POOL/upgrade-pin" || fail "rbd rm upgrade-pin"
ctl_ok client add $P:pc2 --image golden
same $P:pc2 "$tmpdir/golden.raw"
ctl_ok client reset $P:pc2     # a reset wakes the purge
for _ in $(seq 1 60); do trash_ours | grep -q . || break; sleep 0.5; done
trash_ours | grep -q . && { trash_ours; fail "the purge left pc1's old clone in the trash"; }
same $P:pc1 "$tmpdir/pc1.raw"
daemon_alive
stop_daemon
golden_unchanged "end"
echo "PASS"
