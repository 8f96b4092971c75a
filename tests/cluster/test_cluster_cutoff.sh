#!/usr/bin/env bash
# Issue 15, split brain: a gateway cut off from the PCs but not from Ceph
# never writes an overlay after another gateway took its PC over.
# gw2's service address (cluster-address 127.0.0.2:PX) is served by gw1
# from the start - as if keepalived had moved it there - while gw2 itself
# is reached on 127.0.0.3:PY and goes on beating.  A PC placed on gw2
# writes and flushes through 127.0.0.3 (its session held open); then it
# logs in on gw2's service address: gw1 sees gw2's address reached it,
# takes the PC over although gw2 is live (cut off), breaks gw2's lock and
# blocklists gw2, and reads back every flushed write.  gw2's session then
# writes a block again: that write never reaches the overlay (gw1 still
# reads the block's flushed content), and gw2 finds itself fenced and
# exits 75.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-io jq
. "$TOP/tests/cluster/cluster_lib.sh"

P=iqn.2024-01.test.cluster
PC=$P:cut1
NW=8
cluster_setup 2
PX=$(free_port)
PY=$(free_port)
# gw1: its own portal and gw2's service address; gw2: only a portal of its own.
sed -i "/^listen = /a listen = 127.0.0.2:$PX\ncluster-address = 127.0.0.1:${GWPORT[1]}" "$tmpdir/gw1.conf"
sed -i "s/^listen = .*/listen = 127.0.0.3:$PY\ncluster-address = 127.0.0.2:$PX/" "$tmpdir/gw2.conf"
gw_start 1
gw_start 2
cluster_image
gw_stop 2
gw_start 2
TARGET_OPTS="driver=iscsi,transport=tcp,target=$TGT,lun=0,initiator-name=$PC"

echo "== $PC placed on gw2 (gw1 drained meanwhile), writes through gw2 at 127.0.0.3"
gwctl 1 cluster drain gw1
CMDS=()
for i in $(seq 1 $NW); do CMDS+=(-c "write -P $i $((i * 65536)) 4k" -c flush); done
timeout -k 5 60 stdbuf -oL qemu-io "${CMDS[@]}" -c "read -P 1 65536 4k" -c "sleep 12000" \
	-c "write -P 153 65536 4k" -c flush --image-opts "$TARGET_OPTS,portal=127.0.0.3:$PY" \
	>"$tmpdir/a.out" 2>&1 &
QPID=$!
for _ in $(seq 1 300); do
	grep -q "^read 4096/4096" "$tmpdir/a.out" && break
	sleep 0.1
done
grep -q "^read 4096/4096" "$tmpdir/a.out" || { cat "$tmpdir/a.out"; fail "$PC did not write through gw2"; }
[ "$(grep -c '^wrote 4096/4096' "$tmpdir/a.out")" = $NW ] || { cat "$tmpdir/a.out"; fail "not every write acknowledged"; }
gwctl 1 cluster drain gw1 --undo
gwctl 1 --json cluster status
[ "$(echo "$OUT" | jq -r --arg i "$PC" '.pcs[] | select(.initiator == $i) | .gateway')" = gw2 ] ||
	fail "$PC is not placed on gw2"
[ "$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .state')" = up ] || fail "gw2 is not up"
GW2_CEPH=$(echo "$OUT" | jq -r '.gateways[] | select(.name == "gw2") | .ceph_addr')

echo "== $PC reaches gw2's service address, held by gw1: gw1 takes it over from the live gw2"
RCMDS=()
for i in $(seq 1 $NW); do RCMDS+=(-c "read -P $i $((i * 65536)) 4k"); done
ROUT=$(timeout -k 5 60 qemu-io -r "${RCMDS[@]}" --image-opts "$TARGET_OPTS,portal=127.0.0.2:$PX" 2>&1)
[ "$(echo "$ROUT" | grep -c '^read 4096/4096')" = $NW ] && ! echo "$ROUT" | grep -q -i fail ||
	{ echo "$ROUT"; tail -n 20 "$tmpdir/gw1.log"; fail "$PC did not read back its flushed writes at gw1"; }
grep -q "gw2 is cut off from the PCs" "$tmpdir/gw1.log" || fail "gw1 did not see gw2 cut off"
grep -q "taking over from gateway gw2 (up, cut off from the PCs)" "$tmpdir/gw1.log" ||
	fail "gw1 did not say it took over from the cut-off gw2"
timeout 30 ceph osd blocklist ls 2>/dev/null | grep -F -q "$GW2_CEPH" || fail "gw2 ($GW2_CEPH) is not blocklisted"
echo "    ok: taken over, $NW flushed writes read back, gw2 blocklisted"

echo "== gw2's session writes again: nothing reaches the overlay; gw2 exits 75"
wait "$QPID"
echo "    gw2's session after the takeover: $(grep -c '^wrote' "$tmpdir/a.out") writes acknowledged in all"
rc=0
for _ in $(seq 1 100); do
	kill -0 "${GWPID[2]}" 2>/dev/null || break
	sleep 0.1
done
wait "${GWPID[2]}" || rc=$?
GWPID[2]=""
[ "$rc" = 75 ] || { tail -n 20 "$tmpdir/gw2.log"; fail "gw2 exited with status $rc, not 75"; }
ROUT=$(timeout -k 5 60 qemu-io -r -c "read -P 1 65536 4k" --image-opts "$TARGET_OPTS,portal=127.0.0.1:${GWPORT[1]}" 2>&1)
echo "$ROUT" | grep -q '^read 4096/4096' && ! echo "$ROUT" | grep -q -i fail ||
	{ echo "$ROUT"; fail "a write of the cut-off gw2 reached the overlay after the takeover"; }
echo "    ok: the block still holds its flushed content; gw2 fenced (exit 75)"

gw_stop 1
echo "PASS"
