#!/usr/bin/env bash
# Issue 15, "Shared state": the registry of a cluster of gateways lives in
# RADOS (lab/store_rados.c, lab/records.c).  One single-node Ceph
# (tests/lib/ceph.sh, memstore), two pristined gateways gw1 and gw2 on
# 127.0.0.1 (own ports, own state directories, the same pool,
# cluster-name set, cluster-address = own portal), neither with an
# [image] of its own:
#   image add --rbd on gw1 -> listed by gw2 (and its target served there);
#   client add / set / remove on gw1 -> seen on gw2 within 1 s (measured,
#   printed, asserted);
#   client adds on both gateways at once -> both kept, on both;
#   one draft committed through both gateways at once -> exactly one
#   success and one clear error, then both show the same versions;
#   gw2 restarted -> it sees everything;
#   a local image is refused, by image add and at start.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-img jq
fail() { echo "FAIL: $*"; for g in gw1 gw2; do echo "--- $g"; tail -n 25 "$tmpdir/$g.log" 2>/dev/null; done; exit 1; }

P=iqn.2024-01.test.pristine
MIB=8

t0=$SECONDS
ceph_start "$tmpdir/ceph" memstore
echo "ceph up in $((SECONDS - t0)) s: mon $CEPH_MON, pool $CEPH_POOL"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
make_image "$tmpdir/golden.raw" "$MIB"
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"

# gateway_conf NAME PORT: $tmpdir/NAME.conf, state $tmpdir/NAME.
gateway_conf() {
	cat >"$tmpdir/$1.conf" <<EOF
[server]
state = $tmpdir/$1
listen = 127.0.0.1:$2
nop-interval = 0
ceph-conf = $PCONF
ceph-id = pristine
cluster-name = $1
cluster-address = 127.0.0.1:$2
cluster-pool = $CEPH_POOL

[defaults]
enroll = auto
EOF
}
P1=$(free_port)
P2=$(free_port)
gateway_conf gw1 "$P1"
gateway_conf gw2 "$P2"

# start_gw NAME: pristined on NAME.conf, log NAME.log; its PID in G_NAME.
start_gw() {
	local before
	before=$(grep -c listening "$tmpdir/$1.log" 2>/dev/null) || before=${before:-0}
	"$PRISTINED" -c "$tmpdir/$1.conf" >>"$tmpdir/$1.log" 2>&1 &
	eval "G_$1=$!"
	for _ in $(seq 1 150); do
		[ "$(grep -c listening "$tmpdir/$1.log")" -gt "$before" ] && return 0
		kill -0 "$(eval echo "\$G_$1")" 2>/dev/null || { cat "$tmpdir/$1.log"; fail "$1 exited at start"; }
		sleep 0.1
	done
	cat "$tmpdir/$1.log"; fail "$1 did not start listening"
}
# stop_gw NAME: SIGTERM, a clean exit and no sanitizer report.
stop_gw() {
	local pid rc=0
	pid=$(eval echo "\$G_$1")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" || rc=$?
	eval "G_$1="
	grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/$1.log" &&
		{ cat "$tmpdir/$1.log"; fail "sanitizer report in $1's log"; }
	[ "$rc" -eq 0 ] || { tail -n 40 "$tmpdir/$1.log"; fail "$1 exited with status $rc"; }
}
G_gw1=""
G_gw2=""
trap 'for p in $G_gw1 $G_gw2; do kill -KILL $p 2>/dev/null; done; ceph_stop; cleanup_common' EXIT

# c1 / c2 ARGS: pristinectl on gw1 / gw2.
c1() { timeout 60 "$CTL" --state "$tmpdir/gw1" "$@"; }
c2() { timeout 60 "$CTL" --state "$tmpdir/gw2" "$@"; }
ok() {
	local gw=$1 out rc=0
	shift
	out=$("$gw" "$@" 2>&1) || rc=$?
	echo "\$ [$gw] pristinectl $*  -> $rc"
	[ "$rc" -eq 0 ] || { echo "$out"; fail "[$gw] pristinectl $* exited $rc"; }
}
now_ms() { date +%s%3N; }
# seen_within GW JQ: poll GW's client list until JQ (over its --json) is
# "true"; prints the milliseconds it took; fails after 5 s.
seen_within() {
	local gw=$1 jqx=$2 start t
	start=$3
	for _ in $(seq 1 500); do
		if [ "$("$gw" --json client list | jq -r "$jqx")" = true ]; then
			t=$(($(now_ms) - start))
			echo "$t"
			return 0
		fi
		sleep 0.01
	done
	echo 99999
}

start_gw gw1
start_gw gw2
grep -q "cluster: gateway gw1, records in RADOS" "$tmpdir/gw1.log" || { cat "$tmpdir/gw1.log"; fail "gw1 not a gateway"; }

echo "== a local image is refused in cluster mode (image add)"
out=$(c1 image add local "$tmpdir/golden.raw" 2>&1) && fail "a local image was added on a gateway: $out"
echo "$out"
echo "$out" | grep -q "Ceph RBD only" || fail "unclear refusal of a local image: $out"

echo "== image add --rbd on gw1 -> listed by gw2"
ok c1 image add golden --rbd "$CEPH_POOL/golden@v1"
for _ in $(seq 1 100); do
	c2 --json image list | jq -e '.images[] | select(.name == "golden")' >/dev/null && break
	sleep 0.02
done
c2 --json image list | jq -e '.images[] | select(.name == "golden")' >/dev/null ||
	{ tail -n 20 "$tmpdir/gw2.log"; fail "gw2 does not list the image added on gw1"; }
grep -q "golden" "$tmpdir/gw2.log" || fail "gw2 logged nothing of image golden"
echo "    ok: gw2 lists golden"
# one uid, one history: the same record
[ "$(c1 --json image list | jq -c '.images[0] | {current, versions}')" = \
  "$(c2 --json image list | jq -c '.images[0] | {current, versions}')" ] || fail "the gateways differ on golden"

echo "== client add / set / remove on gw1 -> seen on gw2 within 1 s"
start=$(now_ms)
ok c1 client add "$P:pc1" --name pc1 --image golden
t_add=$(seen_within c2 '[.clients[] | select(.initiator == "'"$P:pc1"'")] | length == 1' "$start")
echo "    client add seen on gw2 after ${t_add} ms"
[ "$t_add" -lt 1000 ] || fail "client add took ${t_add} ms to reach gw2 (bound: 1000)"
start=$(now_ms)
ok c1 client set pc1 --quota 64M --mac 52:54:00:00:00:01
t_set=$(seen_within c2 '[.clients[] | select(.initiator == "'"$P:pc1"'" and .quota_bytes == 67108864 and .mac == "52:54:00:00:00:01")] | length == 1' "$start")
echo "    client set seen on gw2 after ${t_set} ms"
[ "$t_set" -lt 1000 ] || fail "client set took ${t_set} ms to reach gw2 (bound: 1000)"
start=$(now_ms)
ok c1 client remove pc1
t_rm=$(seen_within c2 '[.clients[] | select(.initiator == "'"$P:pc1"'")] | length == 0' "$start")
echo "    client remove seen on gw2 after ${t_rm} ms"
[ "$t_rm" -lt 1000 ] || fail "client remove took ${t_rm} ms to reach gw2 (bound: 1000)"

echo "== client adds on both gateways at once -> both kept"
adders=""
for i in 1 2 3 4; do
	c1 client add "$P:a$i" --image golden >"$tmpdir/a$i.out" 2>&1 &
	adders="$adders $!"
	c2 client add "$P:b$i" --image golden >"$tmpdir/b$i.out" 2>&1 &
	adders="$adders $!"
done
wait_fail=0
for j in $adders; do wait "$j" || wait_fail=1; done
[ "$wait_fail" -eq 0 ] || { cat "$tmpdir"/[ab]?.out; fail "a concurrent client add failed"; }
sleep 1
for gw in c1 c2; do
	n=$("$gw" --json client list | jq '[.clients[] | select(.initiator | test(":[ab][1-4]$"))] | length')
	[ "$n" -eq 8 ] || { "$gw" client list; fail "$gw lists $n of the 8 clients added at once"; }
done
echo "    ok: both gateways list all 8"

echo "== PCs enrolled at their first login on both gateways at once -> all kept"
GT=iqn.2026-11.org.pristine:golden
# login PORT INI: a read of 4 KiB as INI (enrolled at login)
login() {
	timeout -k 5 60 qemu-io -r -c "read 0 4k" --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$1,target=$GT,lun=0,initiator-name=$2" \
		>"$tmpdir/login-${2##*:}.out" 2>&1
}
logins=""
for i in 1 2 3 4; do
	login "$P1" "$P:e$i" &
	logins="$logins $!"
	login "$P2" "$P:f$i" &
	logins="$logins $!"
done
wait_fail=0
for j in $logins; do wait "$j" || wait_fail=1; done
[ "$wait_fail" -eq 0 ] || { cat "$tmpdir"/login-*.out; fail "a first login failed"; }
for gw in c1 c2; do
	for _ in $(seq 1 100); do
		n=$("$gw" --json client list | jq '[.clients[] | select(.initiator | test(":[ef][1-4]$"))] | length')
		[ "$n" -eq 8 ] && break
		sleep 0.05
	done
	[ "$n" -eq 8 ] || { "$gw" client list; fail "$gw lists $n of the 8 PCs enrolled at once"; }
done
grep -h "merged with another gateway" "$tmpdir/gw1.log" "$tmpdir/gw2.log" | head -n 3
echo "    ok: both gateways list all 8 enrolled PCs"

echo "== a disk open on gw1 is not changed through gw2"
timeout -k 5 60 qemu-io -c "write -P 0x5a 0 64k" --image-opts \
	"driver=iscsi,transport=tcp,portal=127.0.0.1:$P1,target=$GT,lun=0,initiator-name=$P:a1" \
	>"$tmpdir/qio.out" 2>&1 || { cat "$tmpdir/qio.out"; fail "qemu-io as a1 on gw1"; }
grep -E -i -q 'fail|error|cannot' "$tmpdir/qio.out" && { cat "$tmpdir/qio.out"; fail "qemu-io as a1 on gw1"; }
rc=0
out=$(c2 client reset "$P:a1" 2>&1) || rc=$?
echo "    [c2] client reset a1 -> $rc: $out"
[ "$rc" -ne 0 ] || fail "a1's disk, open on gw1, was reset through gw2"
echo "$out" | grep -q "open on another gateway" || fail "unclear refusal: $out"
rc=0
out=$(c2 client remove "$P:a1" --force 2>&1) || rc=$?
echo "    [c2] client remove a1 --force -> $rc: $out"
[ "$rc" -ne 0 ] || fail "a1, open on gw1, was removed through gw2"
ok c1 client reset "$P:a1"

echo "== one draft committed through both gateways at once -> one winner, one clear error"
ok c1 image edit golden --client "$P:maint"
for _ in $(seq 1 100); do
	[ "$(c2 --json image list | jq -r '.images[0].draft.client')" = "$P:maint" ] && break
	sleep 0.02
done
[ "$(c2 --json image list | jq -r '.images[0].draft.client')" = "$P:maint" ] ||
	fail "gw2 does not show the draft opened on gw1"
c1 image commit golden -m "through gw1" >"$tmpdir/commit1.out" 2>&1 &
j1=$!
c2 image commit golden -m "through gw2" >"$tmpdir/commit2.out" 2>&1 &
j2=$!
r1=0; r2=0
wait "$j1" || r1=$?
wait "$j2" || r2=$?
echo "    gw1: rc $r1: $(cat "$tmpdir/commit1.out")"
echo "    gw2: rc $r2: $(cat "$tmpdir/commit2.out")"
[ $((r1 == 0)) -ne $((r2 == 0)) ] || fail "not exactly one commit succeeded (rc $r1 and $r2)"
if [ "$r1" -ne 0 ]; then loser=$tmpdir/commit1.out; else loser=$tmpdir/commit2.out; fi
grep -E -q "no draft: it was committed as v2 by gateway gw[12]|open on another gateway|being changed through gateway" "$loser" ||
	fail "the losing commit's message is not clear: $(cat "$loser")"
sleep 1
v1=$(c1 --json image versions golden | jq -c '[.version_list[] | {version, message}], .current')
v2=$(c2 --json image versions golden | jq -c '[.version_list[] | {version, message}], .current')
echo "    gw1: $v1"
echo "    gw2: $v2"
[ "$v1" = "$v2" ] || fail "the gateways show different versions after the race"
[ "$(c1 --json image list | jq -r '.images[0].versions')" = 2 ] || fail "not 2 versions after one commit"

echo "== the change lock held elsewhere -> a clear error naming the holder, nothing changed"
timeout 20 rados -p "$CEPH_POOL" lock get pristine.rec.lock pristine.change --lock-cookie gw9 \
	--lock-duration 8 || fail "rados lock get"
rc=0
out=$(c1 client add "$P:locked" --image golden 2>&1) || rc=$?
echo "    [c1] client add locked -> $rc: $out"
[ "$rc" -ne 0 ] || fail "a change went through while gw9 held the change lock"
echo "$out" | grep -q "being changed through gateway gw9" || fail "the refusal does not name gw9: $out"
c1 --json client list | jq -e '.clients[] | select(.initiator == "'"$P:locked"'")' >/dev/null &&
	fail "the refused client add was recorded"
sleep 4   # the lease ends
ok c1 client add "$P:locked" --image golden

echo "== gw2 restarted (with an [image] of its own) -> sees everything"
stop_gw gw2
printf '\n[image cfgimg]\nrbd = %s\n' "$CEPH_POOL/golden@v1" >>"$tmpdir/gw2.conf"
start_gw gw2
n=$(c2 --json client list | jq '[.clients[] | select(.initiator | test(":[ab][1-4]$"))] | length')
[ "$n" -eq 8 ] || fail "gw2 after its restart lists $n of 8 clients"
v2=$(c2 --json image versions golden | jq -c '[.version_list[] | {version, message}], .current')
[ "$v1" = "$v2" ] || fail "gw2 after its restart shows other versions: $v2"
echo "    ok: gw2 lists the 8 clients and the same versions"
grep -q "image cfgimg: new history" "$tmpdir/gw2.log" || fail "gw2 did not record its [image]"
echo "== the same [image] on gw1 uses gw2's record"
stop_gw gw1
printf '\n[image cfgimg]\nrbd = %s\n' "$CEPH_POOL/golden@v1" >>"$tmpdir/gw1.conf"
start_gw gw1
grep -q "image cfgimg: new history" "$tmpdir/gw1.log" && fail "gw1 started another history of cfgimg"
grep -q "image cfgimg: 1 version, current v1" "$tmpdir/gw1.log" || fail "gw1 did not load cfgimg's record"
echo "    ok: one history of cfgimg"

echo "== a local image in a gateway's configuration is refused at start"
stop_gw gw2
cp "$tmpdir/gw2.conf" "$tmpdir/gw3.conf"
sed -i "s#^state = .*#state = $tmpdir/gw3#; s#^cluster-name = .*#cluster-name = gw3#; s#^enroll = auto#enroll = deny#" "$tmpdir/gw3.conf"
printf '\n[image local]\npath = %s\n' "$tmpdir/golden.raw" >>"$tmpdir/gw3.conf"
rc=0
timeout 60 "$PRISTINED" -c "$tmpdir/gw3.conf" >"$tmpdir/gw3.log" 2>&1 || rc=$?
cat "$tmpdir/gw3.log" | tail -n 3
[ "$rc" -ne 0 ] || fail "a gateway started with a local image"
grep -q "image local: a gateway of a cluster serves images on Ceph RBD only" "$tmpdir/gw3.log" ||
	fail "no clear message for a local image at start"

stop_gw gw1
echo "PASS"
