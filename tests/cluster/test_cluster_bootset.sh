#!/usr/bin/env bash
# Warm boots in a cluster (lab/bootsets.h, lab/store_rados.c): a gateway
# whose records live in RADOS keeps each version's boot set there, one
# object per version (pristine.rec.bootset.NAME.v<N>, written whole).
# One single-node Ceph (memstore), one gateway, an image on RBD: a PC's
# boot (first login, scattered reads, silence past the settle time,
# shortened by the test-only PRISTINE_TEST_BOOTREC_SETTLE_MS) is learned,
# its object appears in the pool, and after a restart of the gateway the
# same set (boots, chunks) is loaded from RADOS; the prefetch at start
# reads it through the shared read cache (prefetch "done").
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/images.sh"
. "$TOP/tests/lib/ceph.sh"
ceph_needs_daemon qemu-io jq

export PRISTINE_TEST_BOOTREC_SETTLE_MS=500
MIB=8
ceph_start "$tmpdir/ceph" memstore
trap 'ceph_stop; cleanup_common' EXIT
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
make_image "$tmpdir/golden.raw" "$MIB"
timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"
STATE=$tmpdir/gw1
PORT=$(free_port)
cat >"$tmpdir/gw1.conf" <<EOF
[server]
state = $STATE
listen = 127.0.0.1:$PORT
nop-interval = 0
ceph-conf = $PCONF
ceph-id = pristine
cluster-name = gw1
cluster-address = 127.0.0.1:$PORT
cluster-pool = $CEPH_POOL

[defaults]
enroll = auto
EOF
DLOG=$tmpdir/gw1.log
start_gw() {
	start_daemon_conf "$tmpdir/gw1.conf"
	for _ in $(seq 1 50); do [ -S "$STATE/pristined.sock" ] && break; sleep 0.1; done
}
field() { vjson golden ".version_list[0].boot_set.$1"; }

start_gw
ctl_ok image add golden --rbd "$CEPH_POOL/golden@v1"
GTARGET=$(echo "$OUT" | grep -o 'iqn[^ ]*' | head -n 1)
[ -n "$GTARGET" ] || fail "image add --rbd said no target"
# chunks 0, 16-17, 80: 4 chunks
qio iqn.2024-01.test:pc1 -c "read 0 4k" -c "read 1M 128k" -c "read 5M 64k"
for _ in $(seq 1 100); do [ "$(field boots)" = 1 ] && break; sleep 0.1; done
[ "$(field boots)" = 1 ] || { tail -n 20 "$DLOG"; fail "the boot was not learned (boots $(field boots))"; }
[ "$(field chunks)" = 4 ] || fail "learned $(field chunks) chunks, wanted 4"
timeout 30 rados -p "$CEPH_POOL" ls | grep -qx "pristine.rec.bootset.golden.v1" \
	|| fail "no pristine.rec.bootset.golden.v1 object in the pool"
[ ! -e "$STATE/images/golden/bootset-v1" ] || fail "a gateway of a cluster wrote a local bootset file"

stop_daemon
start_gw
[ "$(field boots)" = 1 ] || fail "after a restart the set has $(field boots) boots, wanted 1"
[ "$(field chunks)" = 4 ] || fail "after a restart the set has $(field chunks) chunks, wanted 4"
for _ in $(seq 1 100); do [ "$(field prefetch)" = done ] && break; sleep 0.1; done
[ "$(field prefetch)" = done ] || fail "the prefetch at start is $(field prefetch)"
stop_daemon
echo "PASS"
