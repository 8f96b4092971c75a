#!/usr/bin/env bash
# CHAP with iPXE, the client that matters most: QEMU + Debian's iPXE ROM
# sanboots a CHAP client of pristined -c FILE (tests/lib/sanboot.sh).
#   - with the right username/password (iPXE offers only MD5) the boot
#     sector runs and reports OK;
#   - mutual CHAP (reverse-username/reverse-password) boots too: iPXE
#     checks the target's answer;
#   - a wrong password: no boot, and the daemon logs the failure;
#   - no secret appears in the daemon's log.
# The credentials are iPXE settings; sanboot() writes the initiator name
# with printf %s into its script, so they ride along as extra "set" lines
# after the name.
. "$(dirname "$0")/../lib/common.sh"
for tool in qemu-system-x86_64 socat as ld python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/qemu.sh"
. "$TOP/tests/lib/sanboot.sh"
sanboot_check_tools
sanboot_build

d=$tmpdir
make_image "$d/disk.img" 16
sanboot_image "$d/disk.img"
ONE=iqn.2024-01.test.chap:ipxe MUT=iqn.2024-01.test.chap:ipxe-mutual
S1=ipxe-secret-0042 S2=ipxe-mutual-0077 ST=target-secret-0099
T=iqn.2026-11.org.pristine:disk
PORT=$(free_port)
conf=$d/pristine.conf
cat >"$conf" <<EOF2
[server]
listen = 127.0.0.1:$PORT
state = $d/state
nop-interval = 0
log-level = debug

[defaults]
enroll = deny

[image disk]
path = $d/disk.img

[client one]
initiator = $ONE
chap-user = pc-one
chap-secret = $S1

[client mut]
initiator = $MUT
chap-user = pc-mut
chap-secret = $S2
mutual-user = pristine
mutual-secret = $ST
EOF2
chmod 600 "$conf"
DLOG=$d/pristined.log
start_daemon_conf "$conf"
nl=$'\n'

sanboot one "$PORT" "$T" "$ONE${nl}set username pc-one${nl}set password $S1"
[ "$RESULT" = PRISTINE-BOOT-OK ] || { cat "$DLOG"; fail "iPXE with one-way CHAP did not boot"; }
grep -q "logged in: initiator $ONE" "$DLOG" || fail "no login of $ONE in the log"

sanboot mutual "$PORT" "$T" "$MUT${nl}set username pc-mut${nl}set password $S2${nl}set reverse-username pristine${nl}set reverse-password $ST"
[ "$RESULT" = PRISTINE-BOOT-OK ] || { cat "$DLOG"; fail "iPXE with mutual CHAP did not boot"; }
grep -q "login key CHAP_C=" "$DLOG" || fail "iPXE did not challenge the target (no mutual CHAP)"

SANBOOT_WAIT=30 sanboot wrong "$PORT" "$T" "$ONE${nl}set username pc-one${nl}set password wrong-secret-000"
[ -z "$RESULT" ] || fail "iPXE booted with a wrong CHAP password ($RESULT)"
grep -q "authentication failed for $ONE" "$DLOG" || { cat "$DLOG"; fail "the refusal is not logged"; }

for s in "$S1" "$S2" "$ST"; do
	grep -qF -- "$s" "$DLOG" && fail "a CHAP secret is in the daemon log"
done
stop_daemon
echo PASS
