#!/usr/bin/env bash
# CHAP with real initiators, pristined -c FILE (mode 0600: it holds secrets).
#   - libiscsi (iscsi-inq, iscsi-ls): one-way CHAP with the secret in the
#     URL logs in; a wrong secret and no credentials are refused and logged
#     as "authentication failed for INITIATOR"; mutual CHAP through
#     LIBISCSI_CHAP_TARGET_USERNAME/PASSWORD logs in, and a wrong target
#     password makes libiscsi itself give up (it checks our answer);
#   - qemu-io (user=, password-secret=): writes and reads back its overlay
#     over CHAP; a wrong password is refused;
#   - a client without CHAP still logs in without it; discovery needs no
#     CHAP until [server] discovery-chap-* is set, then iscsi-ls must give
#     the discovery secret (not a client's);
#   - no secret appears in the daemon's debug log.
# Only MD5 is exercised here: libiscsi 1.19 offers CHAP_A=5 only; SHA-256
# is covered by tests/proto/test_chap.py.
. "$(dirname "$0")/../lib/common.sh"
for tool in iscsi-inq iscsi-ls qemu-io; do
	command -v "$tool" >/dev/null || skip "$tool not installed"
done
[ -x "$PRISTINED" ] || skip "build first (make asan)"

d=$tmpdir
make_image "$d/disk.img" 8
sum=$(sha256sum <"$d/disk.img")
PORT=$(free_port)
ONE=iqn.2024-01.test.chap:one MUT=iqn.2024-01.test.chap:mutual PLAIN=iqn.2024-01.test.chap:plain
S1=one-way-secret-42 S2=initiator-secret-77 ST=target-secret-0099
T=iqn.2026-11.org.pristine:disk
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
chap-user = user-one
chap-secret = $S1

[client mut]
initiator = $MUT
chap-user = user-mut
chap-secret = $S2
mutual-user = target-name
mutual-secret = $ST

[client plain]
initiator = $PLAIN
EOF2
chmod 600 "$conf"
DLOG=$d/pristined.log
start_daemon_conf "$conf"
url() { echo "iscsi://$1127.0.0.1:$PORT/$T/0"; }
inq() { timeout 30 iscsi-inq -i "$@" >"$d/inq.out" 2>&1; }

inq "$ONE" "$(url "user-one%$S1@")" || fail "libiscsi: the right secret was refused"
inq "$ONE" "$(url "user-one%wrong-secret-000@")" && fail "libiscsi: a wrong secret logged in"
inq "$ONE" "$(url "")" && fail "libiscsi: no credentials logged in to a CHAP client"
inq "$ONE" "$(url "someone-else%$S1@")" && fail "libiscsi: a wrong CHAP name logged in"
grep -q "authentication failed for $ONE" "$DLOG" || fail "refusal not logged"
inq "$PLAIN" "$(url "")" || fail "a client without CHAP was refused"
timeout 30 iscsi-ls -i "$ONE" "iscsi://127.0.0.1:$PORT" | grep -q "$T" || fail "discovery without CHAP failed"

# Mutual: libiscsi checks our CHAP_R against the target password it has.
LIBISCSI_CHAP_TARGET_USERNAME=target-name LIBISCSI_CHAP_TARGET_PASSWORD=$ST \
	inq "$MUT" "$(url "user-mut%$S2@")" || fail "libiscsi: mutual CHAP failed"
LIBISCSI_CHAP_TARGET_USERNAME=target-name LIBISCSI_CHAP_TARGET_PASSWORD=not-the-target-pw \
	inq "$MUT" "$(url "user-mut%$S2@")" && fail "libiscsi accepted a target answer made with another secret"
grep -qi "chap\|auth" "$d/inq.out" || { cat "$d/inq.out"; fail "libiscsi refused the mutual answer for another reason"; }
inq "$MUT" "$(url "user-mut%wrong-secret-000@")" && fail "libiscsi: mutual client with a wrong secret logged in"

# qemu-io: user= and password-secret= (a QEMU secret object).
qio() {
	timeout 60 qemu-io --object "secret,id=pw,data=$1" --image-opts -c "$2" \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$T,lun=0,initiator-name=$ONE,user=user-one,password-secret=pw"
}
qio "$S1" "write -P 0x5c 4096 64k" >"$d/qw.txt" 2>&1 || { cat "$d/qw.txt"; fail "qemu-io over CHAP: write failed"; }
qio "$S1" "read -P 0x5c 4096 64k" >"$d/qr.txt" 2>&1 || { cat "$d/qr.txt"; fail "qemu-io over CHAP: read failed"; }
grep -q "Pattern verification failed" "$d/qr.txt" && fail "qemu-io over CHAP: wrong data"
qio "wrong-secret-000" "read 0 4k" >"$d/qbad.txt" 2>&1 && fail "qemu-io: a wrong password logged in"

stop_daemon

# Discovery CHAP ([server] discovery-chap-*): iscsi-ls must authenticate.
SD=discovery-secret-5150
sed -i "s/^log-level = debug$/log-level = debug\ndiscovery-chap-user = disco\ndiscovery-chap-secret = $SD/" "$conf"
start_daemon_conf "$conf"
timeout 30 iscsi-ls -i "$PLAIN" "iscsi://disco%$SD@127.0.0.1:$PORT" >"$d/ls.out" 2>&1 \
	|| { cat "$d/ls.out"; fail "iscsi-ls with the discovery secret failed"; }
grep -q "$T" "$d/ls.out" || fail "iscsi-ls with the discovery secret does not list $T"
timeout 30 iscsi-ls -i "$PLAIN" "iscsi://127.0.0.1:$PORT" >"$d/ls2.out" 2>&1 \
	&& fail "iscsi-ls without credentials listed targets despite discovery CHAP"
timeout 30 iscsi-ls -i "$ONE" "iscsi://user-one%$S1@127.0.0.1:$PORT" >"$d/ls3.out" 2>&1 \
	&& fail "a client's own secret opened a discovery session"
inq "$ONE" "$(url "user-one%$S1@")" || fail "normal CHAP login broken by discovery CHAP"
inq "$PLAIN" "$(url "")" || fail "a client without CHAP was refused under discovery CHAP"
for s in "$S1" "$S2" "$ST" "$SD"; do
	grep -qF -- "$s" "$DLOG" && fail "a CHAP secret is in the daemon log"
done
stop_daemon
[ "$(sha256sum <"$d/disk.img")" = "$sum" ] || fail "the golden image changed"
echo PASS
