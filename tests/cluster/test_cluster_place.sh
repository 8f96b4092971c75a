#!/usr/bin/env bash
# Issue 15, placement: two gateways (pristined, cluster-name gw1/gw2) on
# one Ceph pool (tests/lib/ceph.sh, memstore).  32 initiators all log in
# at gw1's portal: each gateway ends up with 16 +-4 of them (the
# placement, as `pristinectl cluster status --json` shows it, and the
# gateway that actually served each login); a login for a PC placed on
# gw2 made at gw1 is redirected (status 0x0101, TargetAddress) and served
# by gw2; gw1 drained (`pristinectl cluster drain gw1`, asked at gw2):
# a PC online on gw1 (qemu-io) has its session ended, reconnects, is
# redirected and carries on on gw2 (its writes read back), the other
# PCs' next logins land on gw2 and gw1 is left with none; undrained
# (--undo), new PCs go to gw1 again.  A second live gateway called gw1
# is refused at its start.  (A single server's "not a cluster" is in
# test_cluster_fence.sh.)  Until the records live in RADOS (branch
# `records`), gw2 gets the image by a copy of gw1's image.json
# (cluster_lib.sh, cluster_image).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon iscsi-inq qemu-io jq
. "$TOP/tests/cluster/cluster_lib.sh"

P=iqn.2024-01.test.cluster
pids=()
cluster_setup 2
gw_start 1
gw_start 2
cluster_image
# gw2 read the image.json at its start; gw1 has served it since image add.
gw_stop 2
gw_start 2

echo "== both gateways up in the table"
for _ in $(seq 1 20); do
	gwctl 1 --json cluster status
	[ "$(echo "$OUT" | jq -r '[.gateways[] | select(.state == "up")] | length')" = 2 ] && break
	sleep 0.3
done
echo "$OUT" | jq -c '.gateways[] | {name, address, state}'
[ "$(echo "$OUT" | jq -r '[.gateways[] | select(.state == "up")] | length')" = 2 ] ||
	fail "the table does not show two gateways up"
gwctl 2 cluster status
echo "$OUT"
echo "$OUT" | grep -q "gw1" && echo "$OUT" | grep -q "gw2 \*" || fail "cluster status table lacks a gateway"
gwctl 1 cluster health

echo "== a second live gateway of the same name is refused"
sed -e "s|state = .*|state = $tmpdir/state3|" -e "s|listen = .*|listen = 127.0.0.1:$(free_port)|" \
	"$tmpdir/gw1.conf" >"$tmpdir/dup.conf"
rc=0
timeout 60 "$PRISTINED" -c "$tmpdir/dup.conf" >"$tmpdir/dup.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$tmpdir/dup.log"; fail "a second gw1 exited with status $rc, not 1"; }
grep -q "a gateway called gw1 is alive already" "$tmpdir/dup.log" || { cat "$tmpdir/dup.log"; fail "no reason given"; }
grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/dup.log" && { cat "$tmpdir/dup.log"; fail "sanitizer report"; }
echo "    ok: refused"
"$CTL" --state "$tmpdir/state1" cluster health >/dev/null || fail "cluster health of gw1 is not 0"

echo "== 32 PCs log in at gw1's portal"
# four at a time (waiting for those PIDs only: the gateways are children too)
for n in $(seq 1 32); do
	pc_inq 1 "$P:pc$n" &
	pids+=($!)
	if [ $((n % 4)) = 0 ]; then
		wait "${pids[@]}"
		pids=()
	fi
done
for n in $(seq 1 32); do
	pc_inq 1 "$P:pc$n" || fail "pc$n cannot log in through gw1's portal"
done
G1=$(placed 1 gw1)
G2=$(placed 1 gw2)
echo "    split: gw1 $G1, gw2 $G2"
[ $((G1 + G2)) = 32 ] || fail "32 PCs logged in, $G1 + $G2 placed"
[ "$G1" -ge 12 ] && [ "$G1" -le 20 ] || fail "gw1 got $G1 PCs, not 16 +-4"
# Served where placed: every PC placed on gw2 logged in on gw2 (its log), not on gw1.
gwctl 1 --json cluster status
for n in $(seq 1 32); do
	where=$(echo "$OUT" | jq -r --arg i "$P:pc$n" '.pcs[] | select(.initiator == $i) | .gateway')
	other=gw1; [ "$where" = gw1 ] && other=gw2
	grep -q "logged in: initiator $P:pc$n " "$tmpdir/$where.log" ||
		fail "pc$n is placed on $where but never logged in there"
	! grep -q "logged in: initiator $P:pc$n " "$tmpdir/$other.log" ||
		fail "pc$n is placed on $where but logged in on $other"
done
echo "    ok: each PC was served by the gateway it is placed on"

echo "== a login at gw1 for a PC placed on gw2 is redirected and served by gw2"
ON2=$(echo "$OUT" | jq -r '[.pcs[] | select(.gateway == "gw2")][0].initiator')
b1=$(grep -c "redirected to 127.0.0.1:${GWPORT[2]}" "$tmpdir/gw1.log")
b2=$(grep -c "logged in: initiator $ON2 " "$tmpdir/gw2.log")
pc_inq 1 "$ON2" || fail "$ON2 cannot log in at gw1"
[ "$(grep -c "redirected to 127.0.0.1:${GWPORT[2]}" "$tmpdir/gw1.log")" -gt "$b1" ] ||
	fail "gw1 did not redirect $ON2"
[ "$(grep -c "logged in: initiator $ON2 " "$tmpdir/gw2.log")" -gt "$b2" ] ||
	fail "gw2 did not serve $ON2 after the redirect"
echo "    ok: $ON2 redirected by gw1, served by gw2"

echo "== drain gw1 (asked at gw2): its PCs' next logins land on gw2"
# One PC online on gw1 through it all (qemu-io, session held by a sleep):
# the drain ends its session, it reconnects, is redirected, goes on on gw2.
gwctl 1 --json cluster status
ON1=$(echo "$OUT" | jq -r '[.pcs[] | select(.gateway == "gw1")][0].initiator')
timeout -k 5 120 stdbuf -oL qemu-io -c "write -P 91 0 4k" -c flush -c "read -P 91 0 4k" \
	-c "sleep 8000" -c "read -P 91 0 4k" -c "write -P 92 4096 4k" -c flush -c "read -P 92 4096 4k" \
	--image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:${GWPORT[1]},target=$TGT,lun=0,initiator-name=$ON1" \
	>"$tmpdir/drain.out" 2>&1 &
QPID=$!
for _ in $(seq 1 100); do
	grep -q "^read 4096/4096" "$tmpdir/drain.out" && break
	sleep 0.1
done
grep -q "^read 4096/4096" "$tmpdir/drain.out" || { cat "$tmpdir/drain.out"; fail "$ON1 did not write through gw1"; }
b2=$(grep -c "logged in: initiator $ON1 " "$tmpdir/gw2.log")
gwctl 2 cluster drain gw1
for _ in $(seq 1 60); do
	[ "$(placed 2 gw1)" = 0 ] && break
	sleep 0.5
done
[ "$(placed 2 gw1)" = 0 ] || fail "gw1 still has $(placed 2 gw1) PCs placed after the drain"
wait "$QPID" || { cat "$tmpdir/drain.out"; fail "qemu-io of $ON1 failed across the drain"; }
[ "$(grep -c "^read 4096/4096" "$tmpdir/drain.out")" = 3 ] && ! grep -q -i fail "$tmpdir/drain.out" ||
	{ cat "$tmpdir/drain.out"; fail "$ON1 did not carry on across the drain"; }
grep -q "drain: $ON1 sent to another gateway" "$tmpdir/gw1.log" || fail "gw1 did not send $ON1 away"
[ "$(grep -c "logged in: initiator $ON1 " "$tmpdir/gw2.log")" -gt "$b2" ] ||
	fail "$ON1 did not go on on gw2 after the drain"
echo "    ok: $ON1, online on gw1, was sent away and carried on on gw2 (its writes read back)"
gwctl 2 --json cluster status
[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw1") | .state')" = draining ] ||
	fail "gw1 is not shown draining"
for n in $(seq 1 32); do
	pc_inq 1 "$P:pc$n" || fail "pc$n cannot log in during the drain"
done
[ "$(placed 2 gw2)" = 32 ] || fail "after the drain gw2 has $(placed 2 gw2) of the 32 PCs"
echo "    ok: all 32 PCs on gw2"

echo "== undrain: gw1 takes PCs again"
gwctl 1 cluster drain gw1 --undo
for n in $(seq 33 36); do
	pc_inq 1 "$P:pc$n" || fail "pc$n cannot log in"
done
[ "$(placed 1 gw1)" -ge 3 ] || fail "after the undrain gw1 took $(placed 1 gw1) of 4 new PCs"
echo "    ok: new PCs go to gw1 again (the least loaded)"

gw_stop 2
gw_stop 1
echo "PASS"
