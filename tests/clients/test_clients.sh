#!/usr/bin/env bash
# End-to-end test with real iSCSI clients: libiscsi's utilities
# (iscsi-ls, iscsi-inq, iscsi-readcapacity16) and QEMU's iSCSI block
# driver (qemu-img, qemu-io; libiscsi underneath).
#
# Read-only run (--read-only: the image write-protected for all, no overlays):
#   - SendTargets discovery lists the target at our portal; -s shows LUN 0
#     as a direct-access device;
#   - standard INQUIRY, VPD 0x00 lists 0x80 and 0x83, every listed VPD page
#     can be read, the unit serial number is non-empty and stable;
#   - READ CAPACITY(16) gives 64 MiB in 512-byte blocks;
#   - qemu-img convert of the LUN is byte-identical to the image, also with
#     HeaderDigest=CRC32C negotiated;
#   - a qemu-io write fails and the image file is unchanged (sha256).
# Overlay run (the default: each initiator writes its own overlay):
#   - bulk parallel write of the whole LUN with qemu-img convert -n -W;
#   - qemu-io pattern writes at assorted offsets/sizes (aligned, unaligned to
#     4 KiB and to 512 bytes, 4 MiB and larger, first and last blocks),
#     read back with pattern checks in a new session, also with CRC32C
#     header digests;
#   - the LUN read back with qemu-img equals the expected bytes; another
#     initiator still sees the original image; after a daemon restart the
#     client still reads its bytes; the image file never changes (sha256);
#   - four initiators write the same blocks concurrently (qemu-img bench,
#     queue depth 32, two of them with CRC32C header digests; one of them
#     over two sessions at once) while a fifth reads; each then sees exactly
#     its own writes.
# Digest coverage: libiscsi 1.19 never offers DataDigest other than None,
# and its command line utilities force HeaderDigest=None,CRC32C (target's
# choice) whatever the URL says, so CRC32C is forced only through QEMU's
# header-digest=crc32c option (the "?header_digest=crc32c" URL suffix makes
# qemu-img 7.2 crash, so --image-opts is used).  That the target agreed is
# read from libiscsi's debug log ("TargetLoginReply: HeaderDigest=CRC32C").
. "$(dirname "$0")/../lib/common.sh"

LUN=0
MIB=64
T=30	# seconds allowed for each small client command

for tool in iscsi-ls iscsi-inq iscsi-readcapacity16 qemu-img qemu-io sha256sum cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

img=$tmpdir/disk.raw
orig=$tmpdir/orig.raw
make_image "$img" "$MIB"
cp "$img" "$orig"
sum0=$(sha256sum <"$img")

# run SECS CMD...: run a client command bounded in time, output to $out.
out=$tmpdir/out.txt
run() {
	local secs=$1; shift
	timeout -k 5 "$secs" "$@" >"$out" 2>&1
}
show() { sed 's/^/    | /' "$out"; }
expect() {	# expect REGEX WHAT
	grep -E -q -- "$1" "$out" || { show; fail "$2: expected /$1/ in output"; }
}

url() { echo "iscsi://127.0.0.1:$PORT/$TARGET/$LUN"; }
# QEMU --image-opts string for the LUN with a header digest choice.
iopts() {	# iopts DIGEST [raw]
	local p="" o=""
	[ "${2:-}" = raw ] && { o="driver=raw,"; p="file."; }
	echo "${o}${p}driver=iscsi,${p}transport=tcp,${p}portal=127.0.0.1:$PORT,${p}target=$TARGET,${p}lun=$LUN,${p}header-digest=$1"
}

# ---------------------------------------------------------------- read-only
start_daemon --image "$img" --state "$tmpdir/state-ro" --read-only
echo "pristined on port $PORT, target $TARGET (read-only)"
[ -n "$TARGET" ] || fail "no target name printed by pristined"

echo "== iscsi-ls"
run $T iscsi-ls "iscsi://127.0.0.1:$PORT" || { show; fail "iscsi-ls failed"; }
show
expect "^Target:$TARGET Portal:127\.0\.0\.1:$PORT(,|\$)" "iscsi-ls target/portal"
run $T iscsi-ls -s "iscsi://127.0.0.1:$PORT" || { show; fail "iscsi-ls -s failed"; }
show
expect "^Lun:$LUN +Type:DIRECT_ACCESS" "iscsi-ls -s LUN $LUN"

echo "== iscsi-inq (standard INQUIRY)"
run $T iscsi-inq "$(url)" || { show; fail "iscsi-inq failed"; }
show
expect '^Peripheral Qualifier:CONNECTED' "INQUIRY peripheral qualifier"
expect '^Peripheral Device Type:DIRECT_ACCESS' "INQUIRY device type"
expect '^Vendor:.*[^ ]' "INQUIRY vendor"
expect '^Product:.*[^ ]' "INQUIRY product"

echo "== iscsi-inq VPD pages"
# iscsi-inq reads -c as a decimal number.
run $T iscsi-inq -e 1 -c 0 "$(url)" || { show; fail "VPD 0x00 failed"; }
show
expect '^Page:0x00 ' "VPD 0x00 lists itself"
expect '^Page:0x80 ' "VPD 0x00 lists unit serial number page"
expect '^Page:0x83 ' "VPD 0x00 lists device identification page"
pages=$(sed -n 's/^Page:0x\([0-9a-f][0-9a-f]\) .*/\1/p' "$out")
for p in $pages; do
	[ "$p" = 00 ] && continue
	run $T iscsi-inq -e 1 -c $((16#$p)) "$(url)" || { show; fail "VPD page 0x$p is listed but reading it failed"; }
	echo "  -- VPD 0x$p"; show
done

serial() {
	run $T iscsi-inq -e 1 -c 128 "$(url)" || { show; fail "VPD 0x80 failed"; }
	sed -n 's/^Unit Serial Number:\[ *\(.*[^ ]\) *\]$/\1/p' "$out"
}
s1=$(serial); s2=$(serial)
echo "unit serial number: '$s1' / '$s2'"
[ -n "$s1" ] || fail "empty unit serial number"
[ "$s1" = "$s2" ] || fail "unit serial number changed between two calls: '$s1' vs '$s2'"
run $T iscsi-inq -e 1 -c 131 "$(url)" || { show; fail "VPD 0x83 failed"; }
expect '^DEVICE DESIGNATOR #0' "VPD 0x83 has a designator"
cp "$out" "$tmpdir/vpd83.1"
run $T iscsi-inq -e 1 -c 131 "$(url)" || { show; fail "VPD 0x83 failed"; }
cmp -s "$out" "$tmpdir/vpd83.1" || { diff "$tmpdir/vpd83.1" "$out"; fail "VPD 0x83 changed between two calls"; }

echo "== iscsi-readcapacity16"
run $T iscsi-readcapacity16 "$(url)" || { show; fail "iscsi-readcapacity16 failed"; }
show
expect "^RETURNED LOGICAL BLOCK ADDRESS:$((MIB * 2048 - 1))\$" "READ CAPACITY(16) last LBA"
expect '^LOGICAL BLOCK LENGTH IN BYTES:512$' "READ CAPACITY(16) block length"
expect "^Total size:$((MIB * 1048576))\$" "READ CAPACITY(16) total size"

echo "== qemu-img convert (no digest)"
run 300 qemu-img convert -f raw -O raw "$(url)" "$tmpdir/copy.raw" || { show; fail "qemu-img convert failed"; }
cmp "$tmpdir/copy.raw" "$orig" || fail "qemu-img copy differs from the image"
rm -f "$tmpdir/copy.raw"

echo "== qemu-img convert (HeaderDigest=CRC32C)"
LIBISCSI_DEBUG=6 run 300 qemu-img convert --image-opts "$(iopts crc32c raw)" -O raw "$tmpdir/copy.raw" \
	|| { grep -v 'allocation size' "$out" | tail -n 30; fail "qemu-img convert with header digest failed"; }
grep 'TargetLoginReply: .*Digest' "$out" | sed 's/^/    | /'
expect 'TargetLoginReply: HeaderDigest=CRC32C' "target accepts HeaderDigest=CRC32C when it is the only offer"
cmp "$tmpdir/copy.raw" "$orig" || fail "qemu-img copy (header digest) differs from the image"
rm -f "$tmpdir/copy.raw"

echo "== qemu-io write on the read-only LUN must fail"
if run $T qemu-io -f raw "$(url)" -c "write -P 0xab 1M 64k"; then
	show; fail "qemu-io write succeeded on a LUN exported --read-only"
fi
show
if run $T qemu-io -f raw "$(url)" -c "write -P 0xab 0 512" -c "flush"; then
	show; fail "qemu-io write of LBA 0 succeeded on a LUN exported --read-only"
fi
show
# QEMU refuses to open a write-protected LUN read-write, so its writes
# never reach the target.  libiscsi's ReadOnly test sends the medium write
# commands themselves (WRITE 10/12/16, WRITE SAME, WRITE AND VERIFY, ORWRITE,
# COMPARE AND WRITE, UNMAP) and expects DATA PROTECT / WRITE PROTECTED; it
# is skipped unless MODE SENSE reports the LUN write-protected.
if command -v iscsi-test-cu >/dev/null; then
	echo "== iscsi-test-cu --dataloss -t SCSI.ReadOnly"
	run 120 iscsi-test-cu --dataloss -t SCSI.ReadOnly "$(url)"; r=$?
	show
	grep -q 'Logical unit is not write-protected' "$out" \
		&& fail "ReadOnly test skipped: LUN not reported write-protected (MODE SENSE WP bit)"
	[ $r -eq 0 ] || fail "iscsi-test-cu SCSI.ReadOnly failed (rc=$r): write commands must fail with DATA PROTECT/WRITE PROTECTED"
	expect '^ +tests +1 +1 +1 +0 ' "write commands to a read-only LUN fail with WRITE PROTECTED"
fi
# Reads still work on the read-only LUN.
run $T qemu-io -r -f raw "$(url)" -c "read -v 0 16" || { show; fail "qemu-io read-only read failed"; }
expect 'LBA000000000000' "qemu-io read of LBA 0"
daemon_alive
stop_daemon
[ "$(sha256sum <"$img")" = "$sum0" ] || fail "image changed although exported --read-only"
echo "image unchanged (sha256)"

# ------------------------------------------------- overlay (the default mode)
# Clients write to their own overlays; the image file must never change.
start_daemon --image "$img" --state "$tmpdir/state"
echo "pristined on port $PORT, target $TARGET (one overlay per client)"

# Expected content, built alongside in Python.
expected=$tmpdir/expected.raw
python3 - "$tmpdir/new.raw" "$MIB" <<'PY'
import sys, random
rnd = random.Random(7)
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(rnd.randbytes(1 << 20))
PY
cp "$tmpdir/new.raw" "$expected"

echo "== bulk write: qemu-img convert -n -W -m 16 (parallel, out of order)"
run 300 qemu-img convert -n -W -m 16 -f raw -O raw "$tmpdir/new.raw" "$(url)" \
	|| { show; fail "qemu-img convert to the LUN failed"; }
rm -f "$tmpdir/new.raw"

# offset length pattern (bytes); later writes overlap earlier ones on purpose
writes=(
	"1048576 65536 0xab"		# 1 MiB, 64 KiB
	"0 512 0x11"			# LBA 0
	"1536 2560 0x22"		# 512-aligned, not 4 KiB-aligned
	"12345 1000 0x33"		# not even sector-aligned (QEMU does RMW)
	"$((8 << 20)) $((4 << 20)) 0x5a"	# 4 MiB
	"$(((20 << 20) + 512)) $(((4 << 20) + 1024)) 0xc3"	# 4 MiB+, unaligned
	"$(((9 << 20) + 4096)) 8192 0x77"	# inside the 4 MiB one
	"$(((MIB << 20) - 65536)) 65536 0xee"	# last 64 KiB
	"$(((MIB << 20) - 512)) 512 0xef"	# last block
	"$(((30 << 20) + 3584)) 1024 0x44"	# crosses a 4 KiB boundary
)
args=(); rargs=()
for w in "${writes[@]}"; do
	set -- $w
	args+=(-c "write -P $3 $1 $2")
	rargs+=(-c "read -P $3 $1 $2")
done
# what the later overlapping writes leave of earlier ones is checked by the
# whole-image comparisons below; per-pattern reads only for the final state.
final_reads() {
	python3 - "$@" <<'PY'
import sys
ws = [tuple(w.split()) for w in sys.argv[1:]]
for i, (off, ln, pat) in enumerate(ws):
    off, ln = int(off), int(ln)
    later = [(int(o), int(l)) for o, l, _ in ws[i + 1:]]
    if not any(o < off + ln and off < o + l for o, l in later):
        print(f"read -P {pat} {off} {ln}")
PY
}
mapfile -t finals < <(final_reads "${writes[@]}")

echo "== qemu-io pattern writes"
run 120 qemu-io -f raw "$(url)" "${args[@]}" -c flush || { show; fail "qemu-io writes failed"; }
show
python3 - "$expected" "${writes[@]}" <<'PY'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    for w in sys.argv[2:]:
        off, ln, pat = w.split()
        f.seek(int(off)); f.write(bytes([int(pat, 16)]) * int(ln))
PY

echo "== qemu-io read back (new session)"
rd=(); for r in "${finals[@]}"; do rd+=(-c "$r"); done
run 120 qemu-io -r -f raw "$(url)" "${rd[@]}" || { show; fail "qemu-io pattern read-back failed"; }
show
grep -q 'Pattern verification failed' "$out" && fail "pattern read-back mismatch"

echo "== qemu-io with HeaderDigest=CRC32C"
LIBISCSI_DEBUG=6 run 120 qemu-io --image-opts "$(iopts crc32c raw)" \
	-c "write -P 0x99 $((40 << 20)) $((1 << 20))" -c "read -P 0x99 $((40 << 20)) $((1 << 20))" \
	-c "write -P 0x98 $(((41 << 20) + 512)) 3072" -c "read -P 0x98 $(((41 << 20) + 512)) 3072" \
	-c flush || { grep -v 'allocation size' "$out" | tail -n 30; fail "qemu-io with header digest failed"; }
grep -E 'TargetLoginReply: .*Digest|bytes at offset|verification' "$out" | sed 's/^/    | /'
expect 'TargetLoginReply: HeaderDigest=CRC32C' "target accepts HeaderDigest=CRC32C"
grep -q 'Pattern verification failed' "$out" && fail "pattern read-back mismatch (header digest)"
python3 - "$expected" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(40 << 20); f.write(b"\x99" * (1 << 20))
    f.seek((41 << 20) + 512); f.write(b"\x98" * 3072)
PY

echo "== whole LUN read back equals expected bytes"
run 300 qemu-img convert -f raw -O raw "$(url)" "$tmpdir/copy.raw" || { show; fail "qemu-img convert failed"; }
cmp "$tmpdir/copy.raw" "$expected" || fail "LUN content read back differs from what was written"
rm -f "$tmpdir/copy.raw"

echo "== another initiator sees the untouched image, not these writes"
run 300 qemu-img convert --image-opts "$(iopts none raw),file.initiator-name=iqn.2024-01.test.pristine:other" \
	-O raw "$tmpdir/other.raw" || { show; fail "qemu-img convert as another initiator failed"; }
cmp "$tmpdir/other.raw" "$orig" || fail "another initiator sees the first one's writes"
rm -f "$tmpdir/other.raw"

s3=$(serial)
echo "unit serial number of this client's LU: '$s3'"
[ -n "$s3" ] || fail "empty unit serial number (overlay LU)"
run $T iscsi-inq -e 1 -c 131 "$(url)" || { show; fail "VPD 0x83 failed"; }
cp "$out" "$tmpdir/vpd83.2"
daemon_alive
stop_daemon
[ "$(sha256sum <"$img")" = "$sum0" ] || fail "the golden image changed although clients only write overlays"
echo "image unchanged (sha256) after clients wrote"

echo "== after a daemon restart the client still sees its writes"
start_daemon --image "$img" --state "$tmpdir/state"
# A client's LU identity must not change with a restart: an operating
# system recognises its disk by these.  (They may differ between clients
# and from the --read-only LU.)
s4=$(serial)
[ "$s4" = "$s3" ] || fail "unit serial number changed across daemon restarts: '$s3' vs '$s4'"
run $T iscsi-inq -e 1 -c 131 "$(url)" || { show; fail "VPD 0x83 failed"; }
cmp -s "$out" "$tmpdir/vpd83.2" || { diff "$tmpdir/vpd83.2" "$out"; fail "VPD 0x83 changed across daemon restarts"; }
run 300 qemu-img convert -f raw -O raw "$(url)" "$tmpdir/copy.raw" || { show; fail "qemu-img convert failed"; }
cmp "$tmpdir/copy.raw" "$expected" || fail "the client's writes did not survive a daemon restart"
rm -f "$tmpdir/copy.raw"

echo "== concurrency: 4 initiators write the same blocks at once, one of them over two sessions"
# qemu-img bench, queue depth 32: initiator cN writes pattern N*16 into the
# 16 KiB blocks at 32 KiB steps (no wrap-around: 2000 * 32 KiB < 64 MiB);
# c1's second session fills the gaps with 0xf1; a fifth initiator reads
# (depth 64) meanwhile.  Then each must see exactly its own writes.
bench() {	# bench LOGNAME INITIATOR DIGEST ARGS...
	local log=$tmpdir/bench-$1.log ini=$2 dig=$3; shift 3
	timeout -k 5 300 qemu-img bench --image-opts "$(iopts "$dig" raw),file.initiator-name=$ini" "$@" >"$log" 2>&1
}
pids=()
for i in 1 2 3 4; do
	dig=none; [ $i -ge 3 ] && dig=crc32c	# c3 and c4 with header digests
	bench c$i iqn.2024-01.test.pristine:c$i $dig -w -c 2000 -d 32 -s 16384 -S 32768 --pattern=$((i * 16)) & pids+=($!)
done
bench c1b iqn.2024-01.test.pristine:c1 none -w -c 2000 -d 32 -s 16384 -S 32768 -o 16384 --pattern=241 & pids+=($!)
bench r iqn.2024-01.test.pristine:reader crc32c -c 8000 -d 64 -s 4096 -S 8192 & pids+=($!)
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=1; done
for f in "$tmpdir"/bench-*.log; do echo "  -- $(basename "$f")"; sed 's/^/    | /' "$f"; done
[ $bad -eq 0 ] || fail "a concurrent qemu-img bench failed"
daemon_alive
for i in 1 2 3 4; do
	run 300 qemu-img convert --image-opts "$(iopts none raw),file.initiator-name=iqn.2024-01.test.pristine:c$i" \
		-O raw "$tmpdir/c.raw" || { show; fail "qemu-img convert as c$i failed"; }
	python3 - "$tmpdir/c.raw" "$orig" "$i" <<'PY' || fail "initiator c$i does not see exactly its own concurrent writes"
import sys
got, orig, i = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
exp = bytearray(orig)
for k in range(2000):
    exp[k * 32768:k * 32768 + 16384] = bytes([i * 16]) * 16384
    if i == 1:
        exp[k * 32768 + 16384:k * 32768 + 32768] = b"\xf1" * 16384
if got != exp:
    first = next(n for n in range(len(exp)) if got[n] != exp[n])
    print(f"c{i}: first difference at byte {first} (LBA {first // 512}): "
          f"got {got[first]:#04x}, expected {exp[first]:#04x}")
    sys.exit(1)
print(f"c{i}: sees exactly its own writes")
PY
done
rm -f "$tmpdir/c.raw"
daemon_alive
stop_daemon
[ "$(sha256sum <"$img")" = "$sum0" ] || fail "the golden image changed"
echo "PASS"
