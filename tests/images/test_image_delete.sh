#!/usr/bin/env bash
# image delete: a version's space is freed only when nothing depends on it.
# History built here (M = maintenance initiator):
#   v1 source; v2 = v1 + A; v3 = v2 + B; v4 = v1 + C (after a rollback to v1)
# Refused, each with a message naming the reason, and nothing changed:
#   v1 (the source), the current version, a version a client is on, a
#   version another reads through (v2 under v3), a missing version.
# Allowed: v3 once no client is on it (its layer leaves layers/); then v2
# (nothing reads through it any more).  Clients on v4 and v1 read exactly
# what they read before; a restart keeps the deletions (listed as
# deleted, files gone, rollback to them refused); a flatten of v4 makes
# v1 no longer needed by v4's chain but v1 still cannot go (the source).
. "$(dirname "$0")/../lib/common.sh"
for tool in jq qemu-img qemu-io cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
M=iqn.2024-01.test:maint
make_image "$tmpdir/golden.raw" 4
cp "$tmpdir/golden.raw" "$tmpdir/golden.img"
start_daemon --image "$tmpdir/golden.img" --state "$STATE" --nop-interval 0
for _ in $(seq 1 50); do [ -S "$STATE/pristined.sock" ] && break; sleep 0.1; done
GTARGET=$(ctl --json status | jq -r '.targets[0].name')
IMG=$(ctl --json status | jq -r '.targets[0].image')

commit_layer() {   # commit_layer PATTERN OFFSET MSG
	ctl_ok image edit "$IMG" --client "$M"
	qio "$M" -c "write -P $1 $2 64k"
	ctl_ok image commit "$IMG" -m "$3"
}
commit_layer 0x0a 0 "A"        # v2
commit_layer 0x0b 65536 "B"    # v3
ctl_ok client add iqn.2024-01.test:pc3 --name pc3          # on v3
dump iqn.2024-01.test:pc3 "$tmpdir/v3.raw"
ctl_ok image rollback "$IMG" 1
commit_layer 0x0c 131072 "C"   # v4, on v1
ctl_ok client add iqn.2024-01.test:pc4 --name pc4          # on v4
dump iqn.2024-01.test:pc4 "$tmpdir/v4.raw"
[ "$(vjson "$IMG" '.current')" = 4 ] || fail "v4 should be current"
layers_before=$(ls "$STATE/images/$IMG/layers" | wc -l)
[ "$layers_before" -eq 3 ] || fail "expected 3 layers, found $layers_before"

state() { ctl --json image versions "$IMG" | jq -S '[.version_list[] | {version, deleted}], .current'; }
before=$(state)
ctl_err 1 "source" image delete "$IMG" 1
ctl_err 1 "current" image delete "$IMG" 4
ctl_err 1 "pc3 is on v3" image delete "$IMG" 3
ctl_err 1 "v3 .*reads through v2" image delete "$IMG" 2
ctl_err 1 "no version 9" image delete "$IMG" 9
ctl_err 2 "VERSION" image delete "$IMG" x
[ "$(state)" = "$before" ] || fail "a refused delete changed the versions"
[ "$(ls "$STATE/images/$IMG/layers" | wc -l)" -eq 3 ] || fail "a refused delete removed files"

# pc3 moves on (to v4, the current version): v3 can go, then v2.
ctl_ok client reset pc3
ctl_ok image delete "$IMG" 3
ctl_ok image delete "$IMG" 2
[ "$(vjson "$IMG" '[.version_list[] | select(.deleted)] | map(.version) | join(",")')" = "2,3" ] \
	|| fail "v2 and v3 should be listed as deleted"
[ "$(ls "$STATE/images/$IMG/layers" | wc -l)" -eq 1 ] || fail "the deleted layers are still in layers/"
ctl_err 1 "no version 3" image rollback "$IMG" 3
ctl_err 1 "no version 2" image delete "$IMG" 2
same iqn.2024-01.test:pc4 "$tmpdir/v4.raw"
same iqn.2024-01.test:pc3 "$tmpdir/v4.raw"
same iqn.2024-01.test:new1 "$tmpdir/v4.raw"

# A restart keeps it all.
after=$(state)
stop_daemon
start_daemon --image "$tmpdir/golden.img" --state "$STATE" --nop-interval 0
for _ in $(seq 1 50); do [ -S "$STATE/pristined.sock" ] && break; sleep 0.1; done
[ "$(state)" = "$after" ] || fail "the deletions did not survive a restart: $(state)"
[ "$(ls "$STATE/images/$IMG/layers" | wc -l)" -eq 1 ] || fail "layers came back after a restart"
same iqn.2024-01.test:pc4 "$tmpdir/v4.raw"

# Flatten v4: its chain no longer reads v1's file, but v1 stays (the source).
ctl_ok image flatten "$IMG"
[ "$(vjson "$IMG" '.version_list[0].dependents.versions | length')" = 0 ] \
	|| fail "after the flatten v4 should not read through v1"
ctl_err 1 "source" image delete "$IMG" 1
same iqn.2024-01.test:pc4 "$tmpdir/v4.raw"
cmp "$tmpdir/golden.img" "$tmpdir/golden.raw" || fail "the golden image changed"
stop_daemon
echo "PASS: image delete"
