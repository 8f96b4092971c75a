#!/usr/bin/env bash
# Quick mode's --enroll (issue 19, item 5): with --enroll deny an initiator
# nobody added is refused at login and a PC nobody added gets no sanboot
# script from the boot endpoint, while a client added with pristinectl
# logs in; with the default (auto) a stranger is enrolled at its login.
. "$(dirname "$0")/../lib/common.sh"
CTL=$BUILD/pristinectl
[ -x "$PRISTINED" ] && [ -x "$CTL" ] || skip "build first (make all asan)"
command -v iscsi-inq >/dev/null || skip "iscsi-inq (libiscsi-bin) not installed"
command -v curl >/dev/null || skip "curl not installed"

d=$tmpdir
truncate -s 4M "$d/g.img"
BOOT=$(free_port)
start_daemon --image "$d/g.img" --state "$d/s-deny" --enroll deny --nop-interval 0 \
	--boot-listen "127.0.0.1:$BOOT"
url="iscsi://127.0.0.1:$PORT/$TARGET/0"
iscsi-inq -i iqn.2024-01.enroll:stranger "$url" >/dev/null 2>&1 \
	&& fail "--enroll deny let an unknown initiator in"
grep -q "iqn.2024-01.enroll:stranger is not a known client" "$DLOG" || fail "refusal not logged"
"$CTL" --state "$d/s-deny" --json client list | grep -q stranger && fail "the stranger was enrolled"
body=$(curl -s --max-time 10 "http://127.0.0.1:$BOOT/boot.ipxe?mac=52:54:00:aa:bb:01")
grep -q sanboot <<<"$body" && fail "--enroll deny: an unknown PC got a sanboot script: $body"
"$CTL" --state "$d/s-deny" client add iqn.2024-01.enroll:pc01 --quota 1MiB >/dev/null \
	|| fail "client add under --enroll deny"
iscsi-inq -i iqn.2024-01.enroll:pc01 "$url" >/dev/null || fail "an added client was refused"
stop_daemon

start_daemon --image "$d/g.img" --state "$d/s-auto" --nop-interval 0
iscsi-inq -i iqn.2024-01.enroll:stranger "iscsi://127.0.0.1:$PORT/$TARGET/0" >/dev/null \
	|| fail "the default (auto) refused a new initiator"
"$CTL" --state "$d/s-auto" --json client list | grep -q "iqn.2024-01.enroll:stranger" \
	|| fail "the default (auto) did not enroll the new initiator"
stop_daemon
echo "ok: --enroll deny refuses strangers at login and boot, auto enrolls them"
