#!/usr/bin/env bash
# Issue 14: an image on Ceph RBD keeps its drafts, versions and client
# overlays in Ceph (lab/store_rbd.c), against a real single-node cluster
# (tests/lib/ceph.sh) started and stopped here.
#   a client's disk read through iSCSI (qemu-img convert) is the golden
#   byte for byte; two clients are isolated (each reads its own writes,
#   not the other's) and each has its overlay in Ceph (storage/ovl_ceph.h:
#   a marker object and a plain data image, no clone); a client's quota
#   refuses a write that needs a block beyond it; a reset gives the
#   overlay a new instance (under 0.5 s in the API; the new overlay is
#   made at the next login), the client reads the golden again and the
#   purge removes the old instance's data image and objects; the version
#   cycle: edit (a draft clone),
#   write, commit (a protected snapshot), a client reset onto v2 reads
#   v2, rollback to v1, flatten of v2 (a flat RBD image), export of v2
#   byte-identical, delete of v2; a restart serves the same; the golden
#   snapshot's content (rbd export | sha256sum) and its data objects
#   (name, size, mtime from the OSD) are unchanged throughout, and no
#   overlay or layer is a local file.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-img qemu-io jq sha256sum cmp
ceph_fail_shows_log     # a failure shows what the daemon said

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
MIB=16

ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')

make_image "$tmpdir/golden.raw" "$MIB"
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/golden@v1" - | sha256sum; }
SNAP_SHA=$(snap_sha)
[ "$SNAP_SHA" = "$(sha256sum <"$tmpdir/golden.raw")" ] || fail "rbd export of the snapshot is not the imported file"

# The golden's data objects as the OSD sees them: name, size, mtime.
GPREFIX=$(timeout 30 rbd info --format json "$CEPH_POOL/golden" | jq -r .block_name_prefix)
[ -n "$GPREFIX" ] && [ "$GPREFIX" != null ] || fail "no block_name_prefix for the golden"
golden_objects() {
	ceph_data_objects "$GPREFIX"
}
golden_objects >"$tmpdir/objects.before"
[ -s "$tmpdir/objects.before" ] || fail "no data objects of the golden listed"
golden_unchanged() {
	[ "$(snap_sha)" = "$SNAP_SHA" ] || fail "the golden snapshot's content changed ($1)"
	golden_objects >"$tmpdir/objects.now"
	diff "$tmpdir/objects.before" "$tmpdir/objects.now" || fail "a data object of the golden changed ($1)"
	echo "    ok: golden unchanged ($1): $(wc -l <"$tmpdir/objects.now") data objects"
}
ours() { timeout 30 rbd ls "$CEPH_POOL" | grep '^pristine\.' | sort; }
trash_ours() { timeout 30 rbd trash ls "$CEPH_POOL" | awk '{print $2}' | grep '^pristine\.' | sort; }
# No overlay or layer of this image is a local file.
no_local_disks() {
	local n
	n=$(find "$STATE/overlays" "$STATE/images/golden/layers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	[ "$n" -eq 0 ] || { find "$STATE/overlays" "$STATE/images/golden/layers"; fail "local overlays or layers of an RBD image"; }
}

cat >"$tmpdir/pristine.conf" <<EOF
[server]
state = $STATE
ceph-conf = $PCONF
ceph-id = pristine

[image golden]
rbd = $CEPH_POOL/golden@v1
EOF
start_daemon_conf_port

echo "== a client's disk is the golden, byte for byte, through its overlay in Ceph"
same $P:pc1 "$tmpdir/golden.raw"
ours >"$tmpdir/ls.txt"; cat "$tmpdir/ls.txt"
[ "$(grep -c '\.v1\.iqn\.2024-01\.test\.pristine%3apc1\.[0-9a-f]*\.data$' "$tmpdir/ls.txt")" -eq 1 ] || fail "no data image of pc1 listed by rbd ls"
ctl_ok --json client show $P:pc1
DIR1=$(echo "$OUT" | jq -r .overlay_dir)
case $DIR1 in "$CEPH_POOL"/pristine.*) ;; *) fail "pc1's overlay is not in Ceph: $DIR1";; esac
OVL1=${DIR1#*/}
INST1=$(ovl_inst "$OVL1")
[ "${#INST1}" -eq 16 ] || fail "pc1's overlay $OVL1 has no marker with an instance (inst '$INST1')"
DATA1=$(ovl_data "$OVL1")
[ "$DATA1" = "$OVL1.$INST1.data" ] || fail "pc1's overlay has no data image $OVL1.$INST1.data"
timeout 30 rbd info --format json "$CEPH_POOL/$DATA1" | jq -e 'has("parent") | not' >/dev/null \
	|| fail "$DATA1 has a parent: a clone, not a plain image"

echo "== two clients are isolated"
qio $P:pc1 -c "write -P 0x5a 1M 64k"
qio $P:pc2 -c "write -P 0xa5 2M 64k"
cp "$tmpdir/golden.raw" "$tmpdir/pc1.raw"; patch "$tmpdir/pc1.raw" $((1 << 20)) 65536 0x5a
cp "$tmpdir/golden.raw" "$tmpdir/pc2.raw"; patch "$tmpdir/pc2.raw" $((2 << 20)) 65536 0xa5
same $P:pc1 "$tmpdir/pc1.raw"
same $P:pc2 "$tmpdir/pc2.raw"
ours >"$tmpdir/ls.txt"; cat "$tmpdir/ls.txt"
grep -q 'pristine%3apc1\.[0-9a-f]*\.data$' "$tmpdir/ls.txt" && grep -q 'pristine%3apc2\.[0-9a-f]*\.data$' "$tmpdir/ls.txt" \
	|| fail "rbd ls does not show both data images"
no_local_disks
golden_unchanged "two clients wrote"

echo "== a client's quota applies to its overlay: a write needing a block beyond it fails, the rest works"
ctl_ok client add $P:pc7 --image golden
qio $P:pc7 -c "write -P 0x11 0 4k"
ctl_ok --json client show $P:pc7
# The overlay's block (its G): what one 4 KiB write into a fresh overlay holds.
OBJ=$(echo "$OUT" | jq -r .used_bytes)
[ "$OBJ" -ge 4096 ] && [ "$OBJ" -le $((1 << 20)) ] || fail "pc7 holds $OBJ bytes after one 4 KiB write"
ctl_ok client set $P:pc7 --quota $((2 * OBJ))         # two blocks
qio $P:pc7 -c "write -P 0x22 4M 4k"                      # the second block
QOUT=$(timeout -k 5 60 qemu-io -c "write -P 0x33 12M 4k" --image-opts \
	"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$GTARGET,lun=0,initiator-name=$P:pc7" 2>&1)
echo "$QOUT"
echo "$QOUT" | grep -q -i "write failed" || fail "a write beyond pc7's quota did not fail"
qio $P:pc7 -c "write -P 0x44 4M 4k"                      # an object it holds: overwritten
qio $P:pc7 -r -c "read -P 0x11 0 4k" -c "read -P 0x44 4M 4k"
cp "$tmpdir/golden.raw" "$tmpdir/pc7.raw"
patch "$tmpdir/pc7.raw" 0 4096 0x11; patch "$tmpdir/pc7.raw" $((4 << 20)) 4096 0x44
same $P:pc7 "$tmpdir/pc7.raw"                            # the refused write changed nothing
ctl_ok --json client show $P:pc7
[ "$(echo "$OUT" | jq -r .used_bytes)" = $((2 * OBJ)) ] || fail "pc7 holds $(echo "$OUT" | jq -r .used_bytes) bytes, not its two blocks"

echo "== reset: the overlay gets a new instance, the client reads the golden again, the purge removes the old one"
[ -n "$(ovl_left "$OVL1" "$INST1")" ] || fail "ovl_left sees nothing of pc1's live overlay"
ctl_ok --json client reset $P:pc1
SECS=$(echo "$OUT" | jq -r .seconds)
echo "    reset: $SECS s in the API"
awk -v s="$SECS" 'BEGIN { exit !(s + 0 > 0 && s + 0 < 0.5) }' || fail "the reset took $SECS s in the API (bound 0.5 s)"
NEWINST=$(ovl_inst "$OVL1")
[ -n "$NEWINST" ] && [ "$NEWINST" != "$INST1" ] || fail "pc1's overlay still has instance $INST1 after its reset ('$NEWINST')"
same $P:pc1 "$tmpdir/golden.raw"          # its login makes the new overlay
same $P:pc2 "$tmpdir/pc2.raw"
purged=0
for _ in $(seq 1 60); do
	if [ -z "$(ovl_left "$OVL1" "$INST1")" ] && ! trash_ours | grep -q .; then purged=1; break; fi
	sleep 0.5
done
[ "$purged" -eq 1 ] || { ovl_left "$OVL1" "$INST1"; trash_ours; fail "the purge did not remove pc1's old overlay"; }
[ -n "$(ovl_data "$OVL1")" ] || fail "pc1 has no data image after its reset"
echo "    ok: old instance purged"

echo "== the version cycle: edit, write, commit"
ctl_ok image edit golden --client $P:maint
qio $P:maint -c "write -P 0xcd 8M 4k"
ours | grep -q "\.L1$" || fail "no draft clone (L1) listed"
ctl_ok image commit golden -m "on rbd"
cp "$tmpdir/golden.raw" "$tmpdir/v2.raw"; patch "$tmpdir/v2.raw" $((8 << 20)) 4096 0xcd
V2ROOT=$(vjson golden '.version_list[1].root')
case $V2ROOT in "rbd:$CEPH_POOL"/pristine.*L1@v) ;; *) fail "v2's root is not the draft clone's snapshot: $V2ROOT";; esac
timeout 30 rbd snap ls --format json "$CEPH_POOL/${V2ROOT#rbd:*/}" >/dev/null 2>&1 || true
timeout 30 rbd info --format json "$CEPH_POOL/$(echo "${V2ROOT#rbd:*/}" | sed 's/@.*//')@v" | jq -e '.protected == "true"' >/dev/null \
	|| fail "v2's snapshot is not protected"
same $P:pc3 "$tmpdir/v2.raw"            # a new client starts on v2
same $P:pc2 "$tmpdir/pc2.raw"           # keeps v1 and its writes until its reset
ctl_ok client reset $P:pc2
same $P:pc2 "$tmpdir/v2.raw"            # reset onto v2
ours | grep -q '\.v2\.iqn\.2024-01\.test\.pristine%3apc2\.[0-9a-f]*\.data$' || fail "pc2's overlay on v2 not listed"
golden_unchanged "commit"

echo "== rollback to v1"
ctl_ok image rollback golden 1
same $P:pc4 "$tmpdir/golden.raw"
ctl_ok client reset $P:pc3
same $P:pc3 "$tmpdir/golden.raw"

echo "== flatten v2 into a flat RBD image, export v2"
ctl_ok image rollback golden 2
ctl_ok image flatten golden
for _ in $(seq 1 120); do
	FLAT=$(vjson golden '.version_list[1].flat_file')
	[ "$FLAT" != null ] && break
	sleep 0.5
done
case $FLAT in "rbd:$CEPH_POOL"/pristine.*flat-v2@v) ;; *) fail "v2 not flattened into an RBD image: $FLAT";; esac
FLATIMG=${FLAT#rbd:*/}; FLATIMG=${FLATIMG%@*}
timeout 30 rbd info --format json "$CEPH_POOL/$FLATIMG" | jq -e 'has("parent") | not' >/dev/null || fail "$FLATIMG has a parent"
timeout 60 rbd export --no-progress "$CEPH_POOL/$FLATIMG@v" "$tmpdir/flat.raw" || fail "rbd export of the flat copy"
cmp "$tmpdir/flat.raw" "$tmpdir/v2.raw" || {
	echo "differing bytes: $(cmp -l "$tmpdir/flat.raw" "$tmpdir/v2.raw" | wc -l); vs golden: $(cmp -l "$tmpdir/flat.raw" "$tmpdir/golden.raw" | wc -l); nonzero: $(tr -d '\0' <"$tmpdir/flat.raw" | wc -c)"
	timeout 30 rbd info "$CEPH_POOL/$FLATIMG"; timeout 30 rbd du "$CEPH_POOL/$FLATIMG"
	fail "the flat copy of v2 differs from v2"; }
same $P:pc5 "$tmpdir/v2.raw"            # read from the flat copy now
same $P:pc2 "$tmpdir/v2.raw"            # its overlay on the old snapshot still reads v2
ctl_ok image export golden 2 "$tmpdir/export-v2.raw"
for _ in $(seq 1 120); do [ -f "$tmpdir/export-v2.raw" ] && break; sleep 0.5; done
cmp "$tmpdir/export-v2.raw" "$tmpdir/v2.raw" || fail "the export of v2 differs"
no_local_disks
golden_unchanged "flatten and export"
daemon_alive
stop_daemon

echo "== a restart serves the same"
start_daemon_conf_port
same $P:pc2 "$tmpdir/v2.raw"
same $P:pc3 "$tmpdir/golden.raw"
qio $P:pc3 -c "write -P 0x77 3M 4k"
cp "$tmpdir/golden.raw" "$tmpdir/pc3.raw"; patch "$tmpdir/pc3.raw" $((3 << 20)) 4096 0x77
same $P:pc3 "$tmpdir/pc3.raw"
daemon_alive
stop_daemon
start_daemon_conf_port
same $P:pc3 "$tmpdir/pc3.raw"            # its writes are in its overlay

echo "== delete of a version: refused while a client is on it; then its snapshot and clone go"
ctl_ok image rollback golden 1
ctl_err 1 "is on v2" image delete golden 2
for c in pc2 pc5; do ctl_ok client reset $P:$c; done
# A clone in the trash still holds its parent snapshot: wait for the purge.
for _ in $(seq 1 60); do trash_ours | grep -q . || break; sleep 0.5; done
ctl_ok image delete golden 2
V2CLONE=$(echo "${V2ROOT#rbd:*/}" | sed 's/@.*//')
for _ in $(seq 1 60); do
	! ours | grep -q -e "^$V2CLONE\$" -e "^$FLATIMG\$" && ! trash_ours | grep -q . && break
	sleep 0.5
done
ours | grep -q -e "^$V2CLONE\$" -e "^$FLATIMG\$" && fail "v2's clone or flat copy still listed after its delete"
trash_ours | grep -q . && { trash_ours; fail "the trash still holds v2's images"; }
same $P:pc2 "$tmpdir/golden.raw"
daemon_alive
stop_daemon
golden_unchanged "end"
no_local_disks
echo "PASS"
