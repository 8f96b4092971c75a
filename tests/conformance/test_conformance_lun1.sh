#!/usr/bin/env bash
# test_conformance_lun1.sh - libiscsi's conformance suite (iscsi-test-cu)
# against a PC's EXTRA disks (src/lab/xdisk.h), the LUNs beside its boot
# disk: the same selection and expectations as test_conformance.sh gives
# LUN 0, the same allowed skips (docs/conformance.md).
#
# One daemon, a configuration file: the conformance initiator is enrolled
# on image lab, whose PCs get three extra disks -
#   LUN 1  games    (512-byte blocks, policy overlay): ALL, destructive
#   LUN 2  games4k  (4096-byte blocks, overlay):       ALL, destructive
#   LUN 3  library  (policy read-only):                ALL.ReadOnly
# - each run on its own LUN with LUN 0 (the boot disk) and the other
# extra disks present in the same target, as a PC sees them.  The same
# URL twice gives the MultipathIO tests their second path (two sessions
# of one initiator: one PC's iPXE and OS sessions).  The extra images'
# files must stay byte-identical (writes land in the PC's overlays) and
# the daemon must live through it.  Logs: $LOGDIR (default
# build/test-logs/conformance-lun1).
. "$(dirname "$0")/../lib/common.sh"

command -v iscsi-test-cu >/dev/null || skip "iscsi-test-cu not installed (libiscsi-bin)"
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"

LOGDIR=${LOGDIR:-$TOP/build/test-logs/conformance-lun1}
mkdir -p "$LOGDIR"
DOC=$TOP/docs/conformance.md
INI1=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test
T=iqn.2026-11.org.pristine:conf-lab

truncate -s 16M "$tmpdir/lab.img"
for i in games games4k library; do truncate -s 128M "$tmpdir/$i.img"; done
# Not all zeros, so a read of the wrong place or image shows.
printf 'GAMES-IMAGE-LBA0' | dd of="$tmpdir/games.img" conv=notrunc status=none
for i in games games4k library; do sha256sum "$tmpdir/$i.img" >"$tmpdir/$i.sum"; done

PORT=$(free_port)
cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
state = $tmpdir/state

[defaults]
enroll = auto
image = lab

[image lab]
path = $tmpdir/lab.img
target = $T
disks = games games4k library:read-only

[image games]
path = $tmpdir/games.img

[image games4k]
path = $tmpdir/games4k.img
block-size = 4096

[image library]
path = $tmpdir/library.img
CONF
start_daemon_conf "$tmpdir/p.conf"

# run_pass NAME LUN INI ARGS...: iscsi-test-cu on LUN as initiator INI
# with ARGS (the URL twice for destructive runs), output in
# $LOGDIR/NAME.log
run_pass() {
	local name=$1 lun=$2 ini=$3; shift 3
	local url="iscsi://127.0.0.1:$PORT/$T/$lun"
	timeout 1500 iscsi-test-cu -i "$ini" -I "$ini" "$@" "$url" "$url" >"$LOGDIR/$name.log" 2>&1
	echo "iscsi-test-cu ($name, LUN $lun) exit status $?" >>"$LOGDIR/$name.log"
}

# The passes run at once (they mostly wait on the suite's timers), each as
# a PC of its own - its own overlays of the extra disks, its own LUs - so
# that one pass's resets and reservations never reach another's.
run_pass writable 1 "$INI1" -d -t ALL & w1=$!
run_pass writable-4k 2 "$INI1-4k" -d -t ALL & w2=$!
run_pass readonly 3 "$INI1-ro" -d -t ALL.ReadOnly & w3=$!
wait "$w1" "$w2" "$w3"    # (a bare wait would wait for the daemon too)
daemon_alive
# The initiator really was on the extra disks: REPORT LUNS of its target
# lists 0-3 (and a LUN beyond them does not exist).
python3 - "$TOP/tests/lib" "$PORT" "$T" "$INI1" <<'PY' || fail "REPORT LUNS of the conformance PC does not list LUN 0-3"
import sys
sys.path.insert(0, sys.argv[1])
import iscsi_initiator as I
s = I.Session("127.0.0.1", int(sys.argv[2]), initiator_name=sys.argv[4], target_name=sys.argv[3])
s.login()
luns = sorted(I.report_luns(s))
print("REPORT LUNS:", luns)
assert luns == [0, 1, 2, 3], luns
t = s.command(I.cdb_test_unit_ready(), lun=4)
assert t.status == I.CHECK_CONDITION and t.sense[12:14] == b"\x25\x00", (t.status, t.sense.hex())
s.logout()
PY
stop_daemon

for i in games games4k library; do
	sha256sum -c --quiet "$tmpdir/$i.sum" || fail "image $i changed: a client wrote the extra image itself"
done

. "$TOP/tests/lib/conformance.sh"
{
	conf_classify "$LOGDIR/writable.log"
	conf_classify "$LOGDIR/writable-4k.log" | sed 's/^\([a-z]*\) /\1 4k:/'
	conf_classify "$LOGDIR/readonly.log"
} >"$LOGDIR/results.txt"
# The destructive passes skip ReadOnly (a writable LU); it runs for real on
# LUN 3, so their skips do not count when it passed there.
if grep -q '^pass ReadOnly.ReadOnlySBC$' "$LOGDIR/results.txt"; then
	sed -i '/^skip \(4k:\)\?ReadOnly.ReadOnlySBC$/d' "$LOGDIR/results.txt"
fi
conf_verdict "conformance on extra LUNs" "$LOGDIR/results.txt" "$DOC"
echo "PASS"
