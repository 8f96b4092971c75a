#!/usr/bin/env bash
# Issue 4, "what it must show" 1: the whole life cycle of a golden image
# with real clients, driven by pristinectl against a live pristined.
#   add an image at runtime; a QEMU/SeaBIOS/iPXE PC sanboots it (boot
#   sector tests/boot/bootsector.S: reads LBA 1, writes LBA 2) and qemu-io
#   and qemu-img read it; a draft for a maintenance initiator; its writes
#   (qemu-io) are seen by it alone; commit is refused while it is logged
#   in (a held session) and forced with --force; a persistent client on v1
#   keeps v1 (with its own writes) until `client reset`, then reads v2; new
#   clients read v2; flatten while a client reads the disk in a loop (no
#   error, same bytes, the flat file equals v2); export v1 raw and v2 qcow2
#   (byte-compared with reference files built here); rollback to v1 (new
#   and reset clients read v1, a client on v2 keeps v2); import of a qcow2
#   file reads back as its source; the golden file's sha256 never changes.
. "$(dirname "$0")/../lib/common.sh"
for tool in qemu-img qemu-io jq sha256sum cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
. "$TOP/tests/lib/images.sh"
sanboot_check_tools
[ -x "$CTL" ] || skip "$CTL not built (make)"

STATE=$tmpdir/state
G=$tmpdir/golden.raw
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
BOOTPC=$P:bootpc MAINT=$P:maint PC1=$P:pc1
HOLDER=$tmpdir/iscsi_tool.py
cp "$TOP/tests/lib/iscsi_tool.py" "$TOP/tests/lib/iscsi_initiator.py" "$tmpdir/"
MIB=16

sanboot_build
make_image "$tmpdir/dummy.raw" 1
make_image "$G" "$MIB"
sanboot_image "$G"
sanboot_lba2 "$tmpdir/lba2.bin"
SHA=$(sha256sum <"$G")
cp "$G" "$tmpdir/v1.raw"
# v2 = v1 + what the maintenance client writes: 256 KiB of 0xab at 1 MiB
# and 4 KiB of 0xcd at 8 MiB.
cp "$G" "$tmpdir/v2.raw"
patch "$tmpdir/v2.raw" $((1 << 20)) 262144 0xab
patch "$tmpdir/v2.raw" $((8 << 20)) 4096 0xcd

start_daemon --image "$tmpdir/dummy.raw" --state "$STATE"
echo "pristined on port $PORT"

echo "== add the image at runtime"
ctl_ok image add golden "$G"
echo "$OUT" | grep -q "target $GTARGET" || fail "image add did not name target $GTARGET"
[ "$(vjson golden '.current, .versions, (.draft|tostring)' | tr '\n' ' ')" = "1 1 null " ] \
	|| fail "a new image is not at v1 with one version and no draft"

echo "== clients boot and read v1"
same $P:reader1 "$tmpdir/v1.raw"
qio $P:reader1 -r -c "read -v 512 32"
echo "$QIO_OUT" | grep -q "PRISTINE.TEST.LB" && echo "$QIO_OUT" | grep -q "A1.MARKER.5d3e91" \
	|| { echo "$QIO_OUT"; fail "qemu-io does not read the LBA 1 marker"; }
sanboot v1 "$PORT" "$GTARGET" "$BOOTPC"
[ "$RESULT" = PRISTINE-BOOT-OK ] || fail "the PC did not boot v1: '$RESULT'"
daemon_alive
# What the PC sees now: v1 with its LBA 2 write in its overlay.
cp "$tmpdir/v1.raw" "$tmpdir/boot-v1.raw"
dd if="$tmpdir/lba2.bin" of="$tmpdir/boot-v1.raw" bs=512 seek=2 conv=notrunc status=none
same "$BOOTPC" "$tmpdir/boot-v1.raw"
# A persistent client with data of its own: 64 KiB of 0x11 at 4 MiB.
qio "$PC1" -c "write -P 0x11 4M 64k"
cp "$tmpdir/v1.raw" "$tmpdir/pc1-v1.raw"
patch "$tmpdir/pc1-v1.raw" $((4 << 20)) 65536 0x11
same "$PC1" "$tmpdir/pc1-v1.raw"

echo "== a draft for the maintenance client"
ctl_ok image edit golden --client "$MAINT"
[ "$(vjson golden '.draft.client, .draft.base' | tr '\n' ' ')" = "$MAINT 1 " ] \
	|| fail "the draft is not recorded for $MAINT on v1"
qio "$MAINT" -c "write -P 0xab 1M 256k" -c "write -P 0xcd 8M 4k"
qio "$MAINT" -r -c "read -P 0xab 1M 256k" -c "read -P 0xcd 8M 4k"
same "$MAINT" "$tmpdir/v2.raw"
same $P:during-draft "$tmpdir/v1.raw"
same "$PC1" "$tmpdir/pc1-v1.raw"
[ "$(vjson golden '.current, .versions' | tr '\n' ' ')" = "1 1 " ] || fail "the draft changed the current version"

echo "== commit: refused while the maintenance client is logged in"
coproc HOLD { exec python3 "$HOLDER" hold "$PORT" "$GTARGET" "$MAINT" 2>&1; }
read -r -t 30 line <&"${HOLD[0]}" || fail "the held session did not start"
[ "$line" = READY ] || fail "held session: $line"
ctl_err 1 "online" image commit golden -m "update 1"
[ "$(vjson golden '.current, .versions, .draft.online' | tr '\n' ' ')" = "1 1 true " ] \
	|| fail "a refused commit changed the state"
ctl_ok image commit golden -m "update 1" --force
echo "$OUT" | grep -q "v2 is current" || fail "commit --force did not make v2 current"
read -r -t 30 line <&"${HOLD[0]}" || true
echo "held session: ${line:-nothing}"
case $line in "session ended"*) ;; *) fail "commit --force did not end the maintenance session";; esac
wait "$HOLD_PID" 2>/dev/null
[ "$(vjson golden '.current, .versions, (.draft|tostring), .version_list[1].message' | tr '\n' ' ')" \
	= "2 2 null update 1 " ] || fail "after commit: not v2 current with message 'update 1'"

echo "== a persistent client keeps v1 until its reset, new clients get v2"
same "$PC1" "$tmpdir/pc1-v1.raw"
same "$BOOTPC" "$tmpdir/boot-v1.raw"
vjson golden '.version_list[0].dependents.clients[]' | grep -qx "$PC1" || fail "v1 does not list $PC1 as depending on it"
same $P:new-v2 "$tmpdir/v2.raw"
same "$MAINT" "$tmpdir/v2.raw"   # now an ordinary client: a fresh overlay on v2
ctl_ok client reset "$PC1"
same "$PC1" "$tmpdir/v2.raw"
ctl_ok client reset "$BOOTPC"
sanboot v2 "$PORT" "$GTARGET" "$BOOTPC"
[ "$RESULT" = PRISTINE-BOOT-OK ] || fail "the PC did not boot v2 after its reset: '$RESULT'"
cp "$tmpdir/v2.raw" "$tmpdir/boot-v2.raw"
dd if="$tmpdir/lba2.bin" of="$tmpdir/boot-v2.raw" bs=512 seek=2 conv=notrunc status=none
same "$BOOTPC" "$tmpdir/boot-v2.raw"

echo "== flatten v2 while a client reads it in a loop"
STOP=$tmpdir/stop-reading
python3 "$HOLDER" readloop "$PORT" "$GTARGET" $P:looper "$tmpdir/v2.raw" "$STOP" 150 >"$tmpdir/loop.log" 2>&1 &
LOOP=$!
for _ in $(seq 1 300); do grep -q READY "$tmpdir/loop.log" && break; kill -0 $LOOP 2>/dev/null || break; sleep 0.1; done
grep -q READY "$tmpdir/loop.log" || { cat "$tmpdir/loop.log"; fail "the reading client did not start"; }
ctl_ok image flatten golden
touch "$STOP"
rc=0; wait $LOOP || rc=$?
cat "$tmpdir/loop.log"
[ "$rc" -eq 0 ] || fail "the client reading during the flatten saw an error or other bytes"
FLAT=$(vjson golden '.version_list[1].flat_file')
[ "$FLAT" = "$STATE/images/golden/flat-v2.raw" ] || fail "versions do not show v2's flat file: $FLAT"
cmp "$FLAT" "$tmpdir/v2.raw" || fail "the flat file of v2 differs from v2"
[ "$(ctl --json job list | jq -r '.jobs[0] | .kind + " " + .state')" = "flatten done" ] \
	|| fail "the flatten job is not listed as done"
same $P:after-flatten "$tmpdir/v2.raw"
same "$BOOTPC" "$tmpdir/boot-v2.raw"
ctl_err 1 "already one flat file" image flatten golden

echo "== export"
ctl_ok image export golden 1 "$tmpdir/export-v1.raw"
cmp "$tmpdir/export-v1.raw" "$tmpdir/v1.raw" || fail "raw export of v1 differs from v1"
ctl_ok image export golden v2 "$tmpdir/export-v2.qcow2" --format qcow2
[ "$(qemu-img info --output=json "$tmpdir/export-v2.qcow2" | jq -r .format)" = qcow2 ] \
	|| fail "export --format qcow2 did not write a qcow2 file"
qemu-img compare -f qcow2 -F raw "$tmpdir/export-v2.qcow2" "$tmpdir/v2.raw" \
	|| fail "qcow2 export of v2 differs from v2"

echo "== rollback to v1"
ctl_ok image rollback golden 1
[ "$(vjson golden '.current, .versions' | tr '\n' ' ')" = "1 2 " ] || fail "rollback: v1 not current, or a version lost"
same $P:new-after-rollback "$tmpdir/v1.raw"
same "$PC1" "$tmpdir/v2.raw"     # on v2 until its reset
ctl_ok client reset "$PC1"
same "$PC1" "$tmpdir/v1.raw"

echo "== import a qcow2 file"
python3 - "$tmpdir/src.raw" <<'PY'
import sys, random
r = random.Random(7)
with open(sys.argv[1], "wb") as f:
    for i in range(4 * 256):        # 4 MiB, every other 4 KiB block zero
        f.write(r.randbytes(4096) if i % 2 else bytes(4096))
PY
qemu-img convert -f raw -O qcow2 "$tmpdir/src.raw" "$tmpdir/src.qcow2"
ctl_ok image import imported "$tmpdir/src.qcow2"
same $P:imp-reader "$tmpdir/src.raw" iqn.2026-11.org.pristine:imported
[ "$(ctl --json image list | jq -r '.images[] | select(.name == "imported") | .current')" = 1 ] \
	|| fail "the imported image is not listed at v1"

echo "== the golden file is untouched"
[ "$(sha256sum <"$G")" = "$SHA" ] || fail "the golden image file changed"
daemon_alive
stop_daemon
echo PASS
