#!/usr/bin/env bash
# Issue 19 items 2 and 3: the maintenance client that has its own disk on
# the image, through the whole draft cycle, and what each refusal of
# edit/commit/discard says.
#   item 2: a persistent client writes to its own overlay on v1; image
#   edit --client it (forced: it is logged in) keeps that overlay aside
#   and says so; its logins see the draft (client show: still version 1,
#   "maintains" the draft); it writes in the draft; commit puts its old
#   overlay in the trash (logged, said in the answer) and it logs in
#   again on v2 = the draft's writes, without its v1 data (client show
#   version 2).  Then a second cycle ends in a discard: it gets its own
#   disk back, as before the edit.
#   item 3: exact texts of the refusals - a second draft (with and
#   without --force: --force is not suggested), the maintenance client
#   logged in to the draft at commit and at discard (--force suggested,
#   and it works), its own disk online at edit, nothing to commit or
#   discard, rollback during a draft - with no fixed hint added by
#   pristinectl.
. "$(dirname "$0")/../lib/common.sh"
for tool in qemu-img qemu-io jq cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

STATE=$tmpdir/state
G=$tmpdir/golden.raw
GTARGET=iqn.2026-11.org.pristine:golden
P=iqn.2024-01.test.pristine
PC=$P:maint-pc OTHER=$P:other
HOLDER=$tmpdir/iscsi_tool.py
cp "$TOP/tests/lib/iscsi_tool.py" "$TOP/tests/lib/iscsi_initiator.py" "$tmpdir/"

make_image "$tmpdir/dummy.raw" 1
make_image "$G" 8
start_daemon --image "$tmpdir/dummy.raw" --state "$STATE"
ctl_ok image add golden "$G"
ctl_ok client add "$PC" --name maint-pc --image golden --policy persistent

# exact CODE TEXT ARGS...: pristinectl exits CODE and prints exactly TEXT
# (stdout and stderr together): no fixed hint tacked on.
exact() {
	local want=$1 text=$2 rc=0 out
	shift 2
	out=$(ctl "$@" 2>&1) || rc=$?
	echo "\$ pristinectl $*  -> $rc: $out"
	[ "$rc" -eq "$want" ] || fail "pristinectl $* exited $rc, expected $want"
	[ "$out" = "$text" ] || fail "pristinectl $*: printed
$out
expected
$text"
}
# show JQ: over client show maint-pc --json
show() { ctl --json client show maint-pc | jq -c "$1"; }
# hold_start: a session of $PC held open (its own disk, or the draft
# while it maintains one); hold_ended: it was ended by the daemon.
hold_start() {
	coproc HOLD { exec python3 "$HOLDER" hold "$PORT" "$GTARGET" "$PC" 2>&1; }
	read -r -t 30 line <&"${HOLD[0]}" || fail "the held session did not start"
	[ "$line" = READY ] || fail "held session: $line"
}
hold_ended() {
	read -r -t 30 line <&"${HOLD[0]}" || true
	case $line in "session ended"*) ;; *) fail "$1 did not end the held session: ${line:-nothing}";; esac
	wait "$HOLD_PID" 2>/dev/null
}

echo "== the PC has data of its own on v1"
qio "$PC" -c "write -P 0x11 4M 64k"
cp "$G" "$tmpdir/own-v1.raw"
patch "$tmpdir/own-v1.raw" $((4 << 20)) 65536 0x11
same "$PC" "$tmpdir/own-v1.raw"
[ "$(show '[.version, .maintains]')" = '[1,null]' ] || fail "client show before edit: $(show .)"

echo "== edit while it is online on its own disk: refused, --force suggested; forced"
hold_start
exact 1 "pristinectl: client $PC is online (1 session); use --force to end them and open the draft (it sees the draft at its next login)" \
	image edit golden --client maint-pc
ctl_ok image edit golden --client maint-pc --force
hold_ended "image edit --force"
[ "$OUT" = "image golden: draft opened on v1
maint-pc boots the draft from its next login; its own disk on v1 is kept aside: image commit discards it (maint-pc then boots the new version), image discard gives it back" ] \
	|| fail "image edit did not say what becomes of the PC's own disk"
grep -q "image golden: $PC keeps its own disk (on v1) aside while it maintains the draft" "$DLOG" \
	|| fail "the edit did not log that the own disk is kept aside"
[ "$(show '[.version, .maintenance, .maintains]')" = '[1,true,{"image":"golden","draft_on":1}]' ] \
	|| fail "client show during the draft: $(show .)"
ctl client show maint-pc | grep -q '^maintains: *{"image":"golden","draft_on":1}' \
	|| fail "client show (text) does not show the draft it maintains"
[ -d "$STATE/overlays/$PC" ] || fail "the PC's own overlay is gone at edit"

echo "== it writes in the draft, which it alone sees (its own v1 data is not there)"
qio "$PC" -c "write -P 0xab 1M 256k"
cp "$G" "$tmpdir/v2.raw"
patch "$tmpdir/v2.raw" $((1 << 20)) 262144 0xab
same "$PC" "$tmpdir/v2.raw"
same "$P:reader" "$G"

echo "== refusals while the draft is open"
D1="image golden already has a draft (on v1, for $PC), and an image has one draft at a time: commit it (image commit golden -m MESSAGE) or discard it (image discard golden) first"
exact 1 "pristinectl: $D1" image edit golden --client "$OTHER"
exact 1 "pristinectl: $D1" image edit golden --client "$OTHER" --force
exact 1 "pristinectl: $D1" image edit golden --client maint-pc --force
exact 1 "pristinectl: image golden has a draft open on v1: commit or discard it first" image rollback golden 1
hold_start
exact 1 "pristinectl: the maintenance client $PC is online on the draft of golden (1 session): shut it down first, or use --force to end its sessions and commit" \
	image commit golden -m "update 1"
exact 1 "pristinectl: the maintenance client $PC is online on the draft of golden (1 session): shut it down first, or use --force to end its sessions and discard the draft" \
	image discard golden
[ "$(vjson golden '[.current, .versions, .draft.online] | tostring')" = '[1,1,true]' ] \
	|| fail "a refused commit or discard changed the image"

echo "== commit --force: the PC moves to v2, its old overlay goes to the trash"
ctl_ok image commit golden -m "update 1" --force
hold_ended "image commit --force"
[ "$(echo "$OUT" | sed 's/([0-9.]* MiB written)/(N MiB written)/')" = "image golden: committed, v2 is current
maint-pc now boots v2: its own disk on v1, kept aside since image edit (N MiB written), went to the trash" ] \
	|| fail "the commit did not say what became of the PC's own disk"
grep -q "client $PC reset (it made v2 of golden): overlay discarded, now on golden v2 (was v1)" "$DLOG" \
	|| fail "the move of the PC to v2 is not logged"
[ "$(show '[.version, .maintenance, .maintains]')" = '[2,false,null]' ] || fail "client show after commit: $(show .)"
same "$PC" "$tmpdir/v2.raw"      # logs in again: v2, not its v1 overlay
vjson golden '.version_list[1].dependents.clients[]' | grep -qx maint-pc || fail "v2 does not list maint-pc"
! vjson golden '.version_list[0].dependents.clients[]' | grep -qx maint-pc || fail "v1 still lists maint-pc"

echo "== nothing to commit or discard"
exact 1 "pristinectl: image golden has no draft to commit (image edit golden --client C opens one)" \
	image commit golden -m x
exact 1 "pristinectl: image golden has no draft to discard" image discard golden

echo "== a second cycle ends in a discard: the PC gets its own disk back"
qio "$PC" -c "write -P 0x22 6M 4k"
cp "$tmpdir/v2.raw" "$tmpdir/own-v2.raw"
patch "$tmpdir/own-v2.raw" $((6 << 20)) 4096 0x22
same "$PC" "$tmpdir/own-v2.raw"
ctl_ok image edit golden --client maint-pc     # offline: no --force needed
echo "$OUT" | grep -q "its own disk on v2 is kept aside" || fail "edit: $OUT"
qio "$PC" -c "write -P 0xcd 7M 4k"
cp "$tmpdir/v2.raw" "$tmpdir/draft2.raw"
patch "$tmpdir/draft2.raw" $((7 << 20)) 4096 0xcd
same "$PC" "$tmpdir/draft2.raw"
hold_start
exact 1 "pristinectl: the maintenance client $PC is online on the draft of golden (1 session): shut it down first, or use --force to end its sessions and discard the draft" \
	image discard golden
ctl_ok image discard golden --force
hold_ended "image discard --force"
[ "$OUT" = "image golden: draft discarded (current v2)
maint-pc boots its own disk again, on v2 as before image edit" ] || fail "discard did not say what the PC boots"
[ "$(show '[.version, .maintenance, .maintains]')" = '[2,false,null]' ] || fail "client show after discard: $(show .)"
same "$PC" "$tmpdir/own-v2.raw"

echo "== a discard when the PC's own disk is not on the current version says how to move it"
ctl_ok image rollback golden 1
ctl_ok image edit golden --client maint-pc
ctl --json image discard golden >"$tmpdir/discard.json" || fail "image discard --json failed"
[ "$(jq -r .note "$tmpdir/discard.json")" = "maint-pc boots its own disk again, on v2 as before image edit (client reset maint-pc moves it to v1, the current one)" ] \
	|| fail "discard --json: $(cat "$tmpdir/discard.json")"
same "$PC" "$tmpdir/own-v2.raw"

daemon_alive
stop_daemon
echo PASS
