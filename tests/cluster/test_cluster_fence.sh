#!/usr/bin/env bash
# Issue 15, fencing: a PC placed on gw2 writes through it, flushing
# after every write (qemu-io over libiscsi, its session kept open); gw2
# is killed with -9 while the PC's overlay is locked by it; after
# cluster-dead-after the PC logs in at gw1, which breaks gw2's lock -
# gw2's Ceph address is then in `ceph osd blocklist ls` - and reads back
# every flushed write.  gw2 started again rejoins (cluster status: up)
# with no manual step.  A gateway never breaks a live gateway's lock:
# with the PC online on gw1, its placement forced onto gw2 (the omap
# entry written by hand), its login at gw2 is refused, gw1 is not
# blocklisted and its session goes on writing; a login at gw2 with the
# placement left alone is redirected to gw1, not served by gw2.  A
# gateway whose Ceph address is blocklisted (by hand here) exits with
# status 75 and, started again, rejoins.  And a single server answers
# `cluster status` "not a cluster".
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon iscsi-inq qemu-io jq
. "$TOP/tests/cluster/cluster_lib.sh"

P=iqn.2024-01.test.cluster
NW=16
cluster_setup 2
gw_start 1
gw_start 2
cluster_image
gw_stop 2
gw_start 2

# io_start I IQN NAME COMMANDS...: qemu-io on gateway I's portal as IQN
# running the qemu-io commands given (a "sleep MS" among them keeps the
# session open), line-buffered output in $tmpdir/NAME.out; IOPID_NAME.
io_start() {
	local i=$1 iqn=$2 name=$3 c args=()
	shift 3
	for c in "$@"; do args+=(-c "$c"); done
	timeout -k 5 300 stdbuf -oL qemu-io "${args[@]}" --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:${GWPORT[$i]},target=$TGT,lun=0,initiator-name=$iqn" \
		>"$tmpdir/$name.out" 2>&1 &
	eval "IOPID_$name=$!"
}
# io_wait NAME PATTERN COUNT: wait (30 s at most) until NAME's output has
# COUNT lines matching PATTERN.
io_wait() {
	for _ in $(seq 1 300); do
		[ "$(grep -c -- "$2" "$tmpdir/$1.out")" -ge "$3" ] && return 0
		sleep 0.1
	done
	cat "$tmpdir/$1.out"; fail "qemu-io $1: no $3 lines '$2'"
}

echo "== a PC placed on gw2"
PC=""
for n in $(seq 1 12); do
	pc_inq 2 "$P:x$n" || fail "x$n cannot log in"
	gwctl 1 --json cluster status
	if [ "$(echo "$OUT" | jq -r --arg i "$P:x$n" '.pcs[] | select(.initiator == $i) | .gateway')" = gw2 ]; then
		PC=$P:x$n
		break
	fi
done
[ -n "$PC" ] || fail "no PC of 12 was placed on gw2"
GW2_CEPH=$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .ceph_addr')
GW1_CEPH=$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw1") | .ceph_addr')
echo "    $PC on gw2 (Ceph address $GW2_CEPH)"

echo "== $PC writes $NW blocks through gw2, a flush after each"
CMDS=()
for i in $(seq 1 $NW); do CMDS+=("write -P $i $((i * 65536)) 4k" flush); done
# the read is answered once every flush before it was; the sleep keeps the session
io_start 2 "$PC" a "${CMDS[@]}" "read -P 1 65536 4k" "sleep 120000"
io_wait a "^read 4096/4096" 1
[ "$(grep -c '^wrote 4096/4096' "$tmpdir/a.out")" = $NW ] || { cat "$tmpdir/a.out"; fail "not every write acknowledged"; }
grep -q "logged in: initiator $PC " "$tmpdir/gw2.log" || fail "$PC's writes did not go through gw2"

echo "== kill -9 gw2 (its lock on $PC's overlay stays in Ceph)"
gw_kill 2
kill -KILL "$IOPID_a" 2>/dev/null; wait "$IOPID_a" 2>/dev/null
sleep $((DEAD_AFTER + 1))
gwctl 1 --json cluster status
[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .state')" = dead ] ||
	fail "gw2 is not shown dead after $DEAD_AFTER s"

echo "== $PC logs in at gw1: gw2's lock broken, gw2 blocklisted, every flushed write reads back"
CMDS=()
for i in $(seq 1 $NW); do CMDS+=(-c "read -P $i $((i * 65536)) 4k"); done
ROUT=$(timeout -k 5 60 qemu-io -r "${CMDS[@]}" --image-opts \
	"driver=iscsi,transport=tcp,portal=127.0.0.1:${GWPORT[1]},target=$TGT,lun=0,initiator-name=$PC" 2>&1)
[ "$(echo "$ROUT" | grep -c '^read 4096/4096')" = $NW ] && ! echo "$ROUT" | grep -q -i "fail" ||
	{ echo "$ROUT"; tail -n 20 "$tmpdir/gw1.log"; fail "$PC did not read back its $NW flushed writes at gw1"; }
echo "    ok: $NW flushed writes read back through gw1"
grep -q "taking over from gateway gw2" "$tmpdir/gw1.log" || fail "gw1 did not say it took over from gw2"
timeout 30 ceph osd blocklist ls 2>/dev/null | grep -F -q "$GW2_CEPH" ||
	{ timeout 30 ceph osd blocklist ls; fail "gw2's Ceph address $GW2_CEPH is not blocklisted"; }
echo "    ok: $GW2_CEPH is in the OSD blocklist"

echo "== gw2 started again rejoins by itself"
gw_start 2
for _ in $(seq 1 30); do
	gwctl 1 --json cluster status
	[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .state')" = up ] && break
	sleep 0.3
done
[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .state')" = up ] ||
	fail "gw2 did not rejoin"
NEW2=$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .ceph_addr')
[ "$NEW2" != "$GW2_CEPH" ] || fail "gw2 rejoined with its fenced Ceph address"
echo "    ok: gw2 up again as $NEW2"

echo "== a live gateway's lock is never broken"
[ "$(echo "$OUT" | jq -r --arg i "$PC" '.pcs[] | select(.initiator == $i) | .gateway')" = gw1 ] ||
	fail "$PC is not placed on gw1 after the takeover"
io_start 1 "$PC" b "write -P 77 0 4k" flush "read -P 77 0 4k" "sleep 20000" \
	"write -P 78 4096 4k" flush "read -P 78 4096 4k"
io_wait b "^read 4096/4096" 1
# Redirected, not served: a login at gw2 with the placement as it is.
b2=$(grep -c "logged in: initiator $PC " "$tmpdir/gw2.log")
pc_inq 2 "$PC" || fail "$PC cannot log in at gw2's portal (redirect)"
grep -q "login of $PC redirected to 127.0.0.1:${GWPORT[1]}" "$tmpdir/gw2.log" || fail "gw2 did not redirect $PC"
[ "$(grep -c "logged in: initiator $PC " "$tmpdir/gw2.log")" = "$b2" ] || fail "gw2 served $PC"
# Forced: the placement written by hand says gw2; gw2 must refuse rather than break gw1's lock.
timeout 30 rados -p "$CEPH_POOL" setomapval pristine.cluster.pc "$PC" gw2 || fail "rados setomapval"
! pc_inq 2 "$PC" || fail "gw2 served $PC while gw1 holds its lock"
grep -q "held by gateway gw1 (up), which is live: not broken" "$tmpdir/gw2.log" ||
	{ tail -n 20 "$tmpdir/gw2.log"; fail "gw2 does not say it left gw1's lock alone"; }
! timeout 30 ceph osd blocklist ls 2>/dev/null | grep -F -q "$GW1_CEPH" || fail "gw1 was blocklisted"
io_wait b "^read 4096/4096" 2
! grep -q -i "fail" "$tmpdir/b.out" || { cat "$tmpdir/b.out"; fail "gw1's session of $PC failed"; }
echo "    ok: gw2 refused the login, gw1's session goes on writing"
wait "$IOPID_b" 2>/dev/null

echo "== a gateway that finds itself blocklisted exits 75 (its supervisor restarts it)"
timeout 30 ceph osd blocklist add "$NEW2" >/dev/null 2>&1 || fail "ceph osd blocklist add $NEW2"
rc=0
for _ in $(seq 1 100); do
	kill -0 "${GWPID[2]}" 2>/dev/null || break
	sleep 0.1
done
wait "${GWPID[2]}" || rc=$?
GWPID[2]=""
[ "$rc" = 75 ] || { tail -n 20 "$tmpdir/gw2.log"; fail "gw2, blocklisted, exited with status $rc, not 75"; }
grep -q "gateway gw2 is fenced" "$tmpdir/gw2.log" || fail "gw2 did not say it was fenced"
echo "    ok: gw2 exited 75: $(grep -o 'is fenced ([^)]*' "$tmpdir/gw2.log" | tail -n 1)"
gw_start 2
gwctl 1 --json cluster status
for _ in $(seq 1 30); do
	gwctl 1 --json cluster status
	[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .state')" = up ] && break
	sleep 0.3
done
[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .state')" = up ] ||
	fail "gw2 did not rejoin after its fencing"

gw_stop 2
gw_stop 1

echo "== a single server: not a cluster"
cat >"$tmpdir/single.conf" <<EOC
[server]
state = $tmpdir/single
listen = 127.0.0.1:$(free_port)
ceph-conf = $PCONF
ceph-id = pristine

[image golden]
rbd = $CEPH_POOL/golden@v1
EOC
start_daemon_conf "$tmpdir/single.conf"
SOUT=$("$CTL" --state "$tmpdir/single" cluster status 2>&1) && fail "cluster status succeeded on a single server"
echo "$SOUT" | grep -q "not a cluster" || { echo "$SOUT"; fail "cluster status does not say 'not a cluster'"; }
"$CTL" --state "$tmpdir/single" cluster health >/dev/null 2>&1 && fail "cluster health is 0 on a single server"
stop_daemon
echo "PASS"
