#!/usr/bin/env bash
# Issue 13: the first run.  In a fresh clone of this checkout's HEAD,
# `make run` (with a temporary state directory and free ports) installs
# what it needs, builds, makes the demo disk and starts pristined with its
# boot endpoint; then demo PCs (demo/pc.sh: QEMU under TCG, Debian's iPXE
# ROM, SeaBIOS or OVMF, a restricted user network) boot the demo disk and
# report on COM1 how many times they booted from their own overlay
# (PRISTINE-DEMO-BOOTS=N):
#
#   pc 1, BIOS       1; a key on its serial port reboots it: 2
#   client reset     pristinectl client reset pc-525400de0001
#   pc 1, BIOS       1 again
#   pc 1, UEFI       2: the UEFI program counts on in the same overlay
#   pc 2, BIOS       1: another MAC, another client, its own overlay
#
# The golden demo image's sha256 never changes, and equals that of a
# second build by demo/mkimage.sh (the image is reproducible).  The
# daemon, make and every PC are stopped by their PIDs.  Uncommitted changes
# are not in the clone: this tests HEAD.
. "$(dirname "$0")/../lib/common.sh"
for tool in git make cc as ld mkfs.fat mmd mcopy qemu-system-x86_64 socat sha256sum ps mkfifo; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
for f in /usr/lib/ipxe/qemu/pxe-e1000.rom /usr/lib/ipxe/qemu/efi-e1000.rom \
	/usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_VARS_4M.fd; do
	[ -r "$f" ] || skip "$f missing (packages ipxe-qemu, ovmf: make deps)"
done
HEAD=$(git -C "$TOP" rev-parse HEAD 2>/dev/null) || skip "$TOP is not a git checkout"
. "$TOP/tests/lib/qemu.sh"

RUN_WAIT=${RUN_WAIT:-900}	# seconds for make run to build and start serving
BOOT_WAIT=${BOOT_WAIT:-180}	# seconds for one boot to report
CLONE=$tmpdir/clone
STATE=$tmpdir/state
PC1=pc-525400de0001
PC2=pc-525400de0002
MPID="" READER=""

stop_all() {
	kill_qemu
	[ -n "$READER" ] && { kill "$READER" 2>/dev/null; wait "$READER" 2>/dev/null; READER=""; }
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
	fi
	[ -n "$MPID" ] && { kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; MPID=""; }
}
trap 'stop_all; cleanup_common' EXIT

# daemon_of PID: the pristined among PID's descendants (make -> sh -> exec).
daemon_of() {
	local c
	for c in $(ps -o pid= --ppid "$1"); do
		[ "$(cat "/proc/$c/comm" 2>/dev/null)" = pristined ] && { echo "$c"; return 0; }
		daemon_of "$c" && return 0
	done
	return 1
}

ctl_clone() { timeout 30 "$CLONE/build/pristinectl" --state "$STATE" "$@"; }

# start_pc NAME [VAR=VALUE...]: demo/pc.sh of the clone, its COM1 on a
# Unix socket (QEMU waits for it) that socat copies to $tmpdir/NAME.serial;
# what the test writes to fd 9 (a FIFO) is typed on the PC's serial port.
# Sets QPID (QEMU's: pc.sh execs it) and READER (socat's).
start_pc() {
	local name=$1 sock=$tmpdir/$1.sock
	shift
	rm -f "$tmpdir/$name.keys"
	mkfifo "$tmpdir/$name.keys"
	exec 9<>"$tmpdir/$name.keys"
	env "$@" LISTEN="127.0.0.1:$PORT" BOOT_LISTEN="127.0.0.1:$BOOTPORT" \
		PC_SERIAL="unix:$sock,server=on,wait=on" sh "$CLONE/demo/pc.sh" >"$tmpdir/$name.qemu.log" 2>&1 &
	QPID=$!
	for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] || { cat "$tmpdir/$name.qemu.log"; fail "$name: QEMU made no serial socket"; }
	socat "UNIX-CONNECT:$sock" - <"$tmpdir/$name.keys" >"$tmpdir/$name.serial" 2>/dev/null &
	READER=$!
}

# wait_count NAME N WANT: waits (BOOT_WAIT) until the PC's serial port has
# shown N PRISTINE-DEMO-BOOTS lines; fails unless the Nth says WANT.
wait_count() {
	local name=$1 n=$2 want=$3 start=$SECONDS got
	while :; do
		[ "$(grep -a -c 'PRISTINE-DEMO-BOOTS=' "$tmpdir/$name.serial")" -ge "$n" ] && break
		grep -a -q 'PRISTINE-DEMO-ERROR' "$tmpdir/$name.serial" && break
		kill -0 "$QPID" 2>/dev/null || { cat "$tmpdir/$name.qemu.log"; fail "$name: QEMU exited"; }
		if [ $((SECONDS - start)) -ge "$BOOT_WAIT" ]; then
			sed 's/^/    | /' "$tmpdir/$name.serial"; tail -n 20 "$tmpdir/run.log"
			fail "$name: no boot report $n within $BOOT_WAIT s"
		fi
		sleep 0.5
	done
	got=$(grep -a -o 'PRISTINE-DEMO-\(BOOTS=[0-9]*\|ERROR.*\)' "$tmpdir/$name.serial" | sed -n "${n}p" | tr -d '\r')
	echo "    $name, boot report $n after $((SECONDS - start)) s: $got"
	banner=$(grep -a -o 'pristine demo PC: this is boot [0-9]* on its own overlay' "$tmpdir/$name.serial" |
		sed -n "${n}p")
	echo "    | $banner"
	[ "$banner" = "pristine demo PC: this is boot $want on its own overlay" ] || {
		sed 's/^/    | /' "$tmpdir/$name.serial"; fail "$name: the banner of boot report $n says '$banner', not $want"; }
	[ "$got" = "PRISTINE-DEMO-BOOTS=$want" ] || {
		sed 's/^/    | /' "$tmpdir/$name.serial"; fail "$name: expected PRISTINE-DEMO-BOOTS=$want, got '$got'"; }
}

stop_pc() {
	kill_qemu
	kill "$READER" 2>/dev/null; wait "$READER" 2>/dev/null; READER=""
	exec 9>&-
}

# wait_offline CLIENT: its sessions ended (QEMU stopped), bounded.
wait_offline() {
	for _ in $(seq 1 100); do
		ctl_clone --json client show "$1" | grep -q '"online": *false' && return 0
		sleep 0.2
	done
	ctl_clone --json client show "$1"; fail "$1 is still online after its PC stopped"
}

echo "== a fresh clone of HEAD ($HEAD)"
git clone -q --no-checkout "$TOP" "$CLONE" || fail "git clone"
git -C "$CLONE" checkout -q --detach "$HEAD" || fail "git checkout $HEAD"
[ -z "$(git -C "$TOP" status --porcelain --untracked-files=no)" ] ||
	echo "    (the checkout has uncommitted changes: the clone tests HEAD without them)"

PORT=$(free_port)
BOOTPORT=$(free_port)
while [ "$BOOTPORT" = "$PORT" ]; do BOOTPORT=$(free_port); done
CONPORT=$(free_port)
while [ "$CONPORT" = "$PORT" ] || [ "$CONPORT" = "$BOOTPORT" ]; do CONPORT=$(free_port); done
METPORT=$(free_port)
while [ "$METPORT" = "$PORT" ] || [ "$METPORT" = "$BOOTPORT" ] || [ "$METPORT" = "$CONPORT" ]; do
	METPORT=$(free_port)
done
echo "== make run STATE=$STATE LISTEN=127.0.0.1:$PORT BOOT_LISTEN=127.0.0.1:$BOOTPORT" \
	"CONSOLE_LISTEN=127.0.0.1:$CONPORT METRICS_LISTEN=127.0.0.1:$METPORT"
start=$SECONDS
make -C "$CLONE" -j2 run STATE="$STATE" LISTEN="127.0.0.1:$PORT" BOOT_LISTEN="127.0.0.1:$BOOTPORT" \
	CONSOLE_LISTEN="127.0.0.1:$CONPORT" METRICS_LISTEN="127.0.0.1:$METPORT" \
	>"$tmpdir/run.log" 2>&1 &
MPID=$!
DLOG=$tmpdir/run.log	# for common.sh's messages
until grep -q "boot endpoint on http://127.0.0.1:$BOOTPORT/boot.ipxe" "$tmpdir/run.log"; do
	kill -0 "$MPID" 2>/dev/null || { tail -n 40 "$tmpdir/run.log"; fail "make run ended before serving"; }
	[ $((SECONDS - start)) -lt "$RUN_WAIT" ] || { tail -n 40 "$tmpdir/run.log"; fail "make run did not serve within $RUN_WAIT s"; }
	sleep 0.5
done
DPID=$(daemon_of "$MPID") || { ps -ef --forest; fail "no pristined under make run ($MPID)"; }
echo "    serving after $((SECONDS - start)) s; pristined is PID $DPID"
grep '^make run:' "$tmpdir/run.log" | sed 's/^/    | /'
grep -q "make run: creating the demo disk at $STATE/demo.img" "$tmpdir/run.log" || fail "make run made no demo disk"
[ -x "$CLONE/build/pristinectl" ] || fail "make run did not build pristinectl"
SHA=$(sha256sum <"$STATE/demo.img")
sh "$CLONE/demo/mkimage.sh" "$tmpdir/again.img" || fail "demo/mkimage.sh"
[ "$(sha256sum <"$tmpdir/again.img")" = "$SHA" ] || fail "a second build of the demo disk differs: not reproducible"
[ "$(stat -c %s "$STATE/demo.img")" -eq $((16 << 20)) ] || fail "the demo disk is not 16 MiB"

echo "== pc 1 under BIOS: boots, counts 1; a key reboots it: 2"
start_pc pc1-bios PC=1
wait_count pc1-bios 1 1
printf x >&9	# "Any key reboots."
wait_count pc1-bios 2 2
stop_pc
wait_offline "$PC1"
ctl_clone client list

echo "== pristinectl client reset $PC1; pc 1 under BIOS: 1 again"
ctl_clone client reset "$PC1" || fail "client reset $PC1"
start_pc pc1-reset PC=1
wait_count pc1-reset 1 1
stop_pc
wait_offline "$PC1"

echo "== pc 1 under UEFI (OVMF): counts on in the same overlay: 2"
start_pc pc1-uefi PC=1 UEFI=1
wait_count pc1-uefi 1 2
stop_pc

echo "== pc 2 (another MAC) under BIOS: its own overlay, 1"
start_pc pc2-bios PC=2
wait_count pc2-bios 1 1
stop_pc
ctl_clone client list
ctl_clone --json client show "$PC2" | grep -q '"mac": *"52:54:00:de:00:02"' || fail "$PC2 was not enrolled with its MAC"

[ "$(sha256sum <"$STATE/demo.img")" = "$SHA" ] || fail "the golden demo image changed"
echo "    golden demo image unchanged: ${SHA%% *}"

echo "== the web console of make run: password set with pristinectl, a login, the PCs through it"
grep -q "console: https://127.0.0.1:$CONPORT/" "$tmpdir/run.log" || fail "make run started no web console"
echo "first-run-secret" | ctl_clone console passwd --stdin || fail "console passwd --stdin"
CURL="curl -sS -k --max-time 20 -c $tmpdir/cookies -b $tmpdir/cookies"
code=$($CURL -o "$tmpdir/login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d '{"password":"first-run-secret"}' "https://127.0.0.1:$CONPORT/login") || fail "console login"
[ "$code" = 200 ] || fail "console login answered $code: $(cat "$tmpdir/login.json")"
$CURL "https://127.0.0.1:$CONPORT/api/v1/clients" >"$tmpdir/clients.json" || fail "console /api/v1/clients"
grep -q '"mac": *"52:54:00:de:00:02"' "$tmpdir/clients.json" ||
	fail "the console's client list lacks pc 2: $(head -c 300 "$tmpdir/clients.json")"
$CURL -o /dev/null -w '%{http_code}' "https://127.0.0.1:$CONPORT/" | grep -q 200 ||
	fail "the console's page is not served"
echo "    console: logged in, $(grep -o '"initiator"' "$tmpdir/clients.json" | wc -l) PCs listed"
curl -sS --max-time 20 "http://127.0.0.1:$METPORT/metrics" >"$tmpdir/metrics.txt" || fail "GET /metrics"
grep -q '^pristine_read_bytes_total{' "$tmpdir/metrics.txt" || fail "/metrics has no read counters"
echo "    metrics: $(grep -c '^pristine_' "$tmpdir/metrics.txt") samples"

echo "== stop: pristined (PID $DPID), then make run ends"
kill -0 "$DPID" 2>/dev/null || { tail -n 40 "$tmpdir/run.log"; fail "pristined died"; }
kill -TERM "$DPID"
rc=0
for _ in $(seq 1 150); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$MPID" 2>/dev/null && fail "make run still running 30 s after pristined got SIGTERM"
wait "$MPID" || rc=$?
MPID="" DPID=""
[ "$rc" -eq 0 ] || { tail -n 20 "$tmpdir/run.log"; fail "make run exited with status $rc after SIGTERM"; }
echo "PASS ($SECONDS s)"
