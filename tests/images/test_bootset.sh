#!/usr/bin/env bash
# Warm boots (lab/bootsets.h): a version's boot set is learned from its
# PCs' boots, kept across a restart, prefetched at start, inherited at
# commit, prefetched on request, and nothing is read ahead with
# --no-prefetch.
#
# A "boot" here: a PC's first login (qemu-io as a new initiator), reads
# of a fixed scattered set of ranges, then silence longer than the settle
# time (shortened to 1.5 s by PRISTINE_TEST_BOOTREC_SETTLE_MS, test-only).
# The image is a real file under /var/tmp (not tmpfs), so the page cache
# is what the prefetch fills.  A cold cache: `echo 3 > drop_caches` when
# allowed, else the image file's pages dropped with
# posix_fadvise(DONTNEED) (said so).
#
# Checks: after 3 boots `image versions --json` shows the set - bytes =
# the chunks the ranges cover (64 KiB each), boots = 3; after a restart
# from a cold cache the prefetch runs at start and the set becomes
# resident (>= 90% within 30 s); a committed draft's version shows
# inherited_from = 1 ("from v1"); `image prefetch --wait` ends done;
# with --no-prefetch the state at start is "none", the set stays cold
# and `image prefetch` is refused ("prefetch is off").
. "$(dirname "$0")/../lib/common.sh"
for tool in jq qemu-io python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

export PRISTINE_TEST_BOOTREC_SETTLE_MS=1500
VT=$(mktemp -d /var/tmp/pristine-bootset.XXXXXX)
trap 'cleanup_common; rm -rf "$VT"' EXIT
STATE=$tmpdir/state
M=iqn.2024-01.test:maint
make_image "$VT/golden.img" 64

# The ranges a boot reads (offset, length) and the 64 KiB chunks they
# cover: 0 (1), 16-17 (2), 160 (1), 528 (1), 960-963 (4) = 9 chunks.
READS=(-c "read 0 4k" -c "read 1M 128k" -c "read 10M 64k" -c "read 33M 4k"
       -c "read 60M 256k")
WANT_BYTES=$((9 * 65536))

start() {
	start_daemon --image "$VT/golden.img" --state "$STATE" --nop-interval 0 "$@"
	for _ in $(seq 1 50); do [ -S "$STATE/pristined.sock" ] && break; sleep 0.1; done
	GTARGET=$(ctl --json status | jq -r '.targets[0].name')
	IMG=$(ctl --json status | jq -r '.targets[0].image')
}

# cold: the image's pages out of the page cache.
cold() {
	sync   # dirty pages (the image was just written) cannot be dropped
	if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
		echo "page cache dropped (drop_caches)"
	else
		echo "drop_caches not allowed here: dropping the image's pages with posix_fadvise"
		python3 - "$VT/golden.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
PY
	fi
}

bs() { vjson "$IMG" ".version_list[] | select(.version == ${2:-1}) | .boot_set.$1"; }

# wait_for JQ_FIELD WANT SECS [VERSION]: until boot_set.FIELD = WANT.
wait_for() {
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(bs "$1" "${4:-1}")" = "$2" ] && return 0
		sleep 0.1
	done
	ctl image versions "$IMG"; tail -n 20 "$DLOG"
	fail "boot_set.$1 of v${4:-1} is $(bs "$1" "${4:-1}"), wanted $2 within $3 s"
}

# resident_share [VERSION]: percent of the set in memory now.
resident_share() {
	vjson "$IMG" ".version_list[] | select(.version == ${1:-1}) | .boot_set |
		if .bytes > 0 then (.resident_bytes * 100 / .bytes | floor) else 0 end"
}

start
[ "$(bs bytes)" = 0 ] || fail "a fresh image has a boot set: $(bs bytes)"
for pc in pc1 pc2 pc3; do
	qio "iqn.2024-01.test:$pc" "${READS[@]}"
done
wait_for boots 3 20
[ "$(bs bytes)" = "$WANT_BYTES" ] || fail "boot set of $(bs bytes) bytes, wanted $WANT_BYTES"
[ "$(bs chunks)" = 9 ] || fail "boot set of $(bs chunks) chunks, wanted 9"
[ -f "$STATE/images/$IMG/bootset-v1" ] || fail "no bootset-v1 file next to image.json"
grep -q "boot set learned from .*: 576 KiB, 3 boots" "$DLOG" || fail "no log line of the third boot learned"
ctl_ok image versions "$IMG"
echo "$OUT" | grep -q "BOOT SET" || fail "image versions has no BOOT SET column"
echo "$OUT" | grep -q "3 boots" || fail "image versions does not say 3 boots"

# A restart from a cold cache: the prefetch reads the set at start.
stop_daemon
cold
start
[ "$(bs boots)" = 3 ] || fail "the boot set did not survive a restart (boots $(bs boots))"
wait_for prefetch done 30
share=$(resident_share)
echo "in memory after the prefetch at start: $share%"
[ "$share" -ge 90 ] || fail "only $share% of the boot set is in memory after the prefetch"
grep -q "prefetch of its boot set queued .*daemon start" "$DLOG" || fail "no log line of the prefetch at start"

# commit: the new version inherits the set and is prefetched.
ctl_ok image edit "$IMG" --client "$M"
qio "$M" -c "write -P 0x5a 2M 64k"
ctl_ok image commit "$IMG" -m "a change"
[ "$(bs inherited_from 2)" = 1 ] || fail "v2 did not inherit v1's boot set"
[ "$(bs bytes 2)" = "$WANT_BYTES" ] || fail "v2 inherited $(bs bytes 2) bytes"
[ "$(bs boots 2)" = 0 ] || fail "an inherited set counts no boots of its own"
ctl_ok image versions "$IMG"
echo "$OUT" | grep -q "from v1" || fail "image versions does not say v2's set is from v1"
ctl_ok image prefetch "$IMG" --wait
echo "$OUT" | grep -q "prefetched" || fail "image prefetch --wait did not say it was done"
[ "$(bs prefetch 2)" = done ] || fail "v2's prefetch is $(bs prefetch 2)"
ctl_ok image prefetch "$IMG" --version 1
ctl_err 1 "no version 7" image prefetch "$IMG" --version 7

# --no-prefetch: learned sets kept, nothing read at start.
stop_daemon
cold
start --no-prefetch
[ "$(bs prefetch 2)" = none ] || fail "with --no-prefetch the state is $(bs prefetch 2)"
sleep 2
# v1 is open (its PCs' overlays are opened at start): what it holds is known
[ "$(bs resident_known 1)" = true ] || fail "v1's residency is unknown though its PCs' disks are open"
share=$(resident_share 1)
echo "in memory with --no-prefetch: $share%"
[ "$share" -lt 50 ] || fail "$share% of the set is in memory with --no-prefetch (read ahead anyway?)"
[ "$(ctl --json image versions "$IMG" | jq '[.version_list[].boot_set.prefetched_bytes // 0] | add')" = 0 ] \
	|| fail "something was prefetched with --no-prefetch"
ctl_err 1 "prefetch is off" image prefetch "$IMG"
stop_daemon

# A daemon that dropped root serving a root's image file: the kernel will
# not tell it the file's page cache (mincore), so IN MEMORY shows what the
# last prefetch read instead ("read 100%"), never a made-up share.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chmod 0711 "$tmpdir"   # the user reaches its state directory
	start --user nobody
	[ "$(bs resident_known 2)" = false ] || fail "residency known to a daemon that is not the file's owner"
	ctl_ok image prefetch "$IMG" --wait
	ctl_ok image versions "$IMG"
	echo "$OUT" | grep -q "read 100%" || fail "IN MEMORY does not fall back to what the prefetch read"
	stop_daemon
else
	echo "not root: the dropped-root display is not checked"
fi
echo "PASS"
