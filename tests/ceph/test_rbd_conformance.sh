#!/usr/bin/env bash
# Issue 14: libiscsi's conformance suite (iscsi-test-cu, family ALL)
# against a client overlay on Ceph RBD - our overlay kept in Ceph, over
# the golden's snapshot (lab/store_rbd.c, storage/ovl_ceph.h) - on a real
# single-node cluster
# (tests/lib/ceph.sh) started and stopped here.  The same passes as
# tests/conformance/test_conformance.sh against a local overlay: 512-byte
# and 4096-byte blocks (one daemon each, over the same snapshot), destructive
# tests allowed, the same initiator twice for the reservation and
# multipath tests.  Fails on any failed test and on any skip that
# docs/conformance.md does not list (the local run's list).  The local
# run's ReadOnly skip in its writable passes is not counted there either:
# its read-only pass runs it; no overlay is involved in that one.
# Logs: $LOGDIR (default build/test-logs/conformance-rbd).
. "$(dirname "$0")/../lib/common.sh"
for tool in ceph-mon ceph-osd ceph rados rbd iscsi-test-cu; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/ceph.sh"
. "$TOP/tests/lib/conformance.sh"
fail() { echo "FAIL: $*"; [ -f "${DLOG:-/nonexistent}" ] && tail -n 40 "$DLOG"; exit 1; }

LOGDIR=${LOGDIR:-$TOP/build/test-logs/conformance-rbd}
mkdir -p "$LOGDIR"
DOC=$TOP/docs/conformance.md
INI1=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test
INI2=$INI1

ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
timeout 60 rbd create --size 128M "$CEPH_POOL/golden" || fail "rbd create"
timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null || fail "rbd snap create"

# One daemon per pass (each initiator is the client of one image), each
# with its own state directory and log: its overlays have names of their
# own.  The two passes run at once (they mostly wait on the suite's
# timers and on Ceph's round trips).
# serve NAME BLOCKSIZE: pristined serving golden@v1 as image NAME; its
# port, pid and log in P_PORT/P_PID/P_LOG[NAME].
declare -A P_PORT P_PID P_LOG
trap 'for p in "${P_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done; cleanup_common' EXIT
serve() {
	PORT=$(free_port)
	cat >"$tmpdir/$1.conf" <<EOF
[server]
state = $tmpdir/state-$1
listen = 127.0.0.1:$PORT
ceph-conf = $PCONF
ceph-id = pristine

[image $1]
rbd = $CEPH_POOL/golden@v1
block-size = $2
EOF
	DLOG=$tmpdir/pristined-$1.log
	start_daemon_conf "$tmpdir/$1.conf"
	P_PORT[$1]=$PORT; P_PID[$1]=$DPID; P_LOG[$1]=$DLOG
}
# run_pass NAME IMAGE ARGS...: iscsi-test-cu on IMAGE's target, the URL
# twice (multipath), output in $LOGDIR/NAME.log
run_pass() {
	local name=$1 url="iscsi://127.0.0.1:${P_PORT[$2]}/iqn.2026-11.org.pristine:$2/0"; shift 2
	timeout 1500 iscsi-test-cu -i "$INI1" -I "$INI2" "$@" "$url" "$url" >"$LOGDIR/$name.log" 2>&1
	echo "iscsi-test-cu ($name) exit status $?" >>"$LOGDIR/$name.log"
}
# After a pass: the client's disk was an overlay in Ceph, none was local.
INIESC='iqn\.2007-10\.com\.github%3asahlberg%3alibiscsi%3aiscsi-test'
check_clones() {
	DPID=${P_PID[$1]}; DLOG=${P_LOG[$1]}
	daemon_alive
	grep -E -q "overlay pristine\..*\.v1\.$INIESC: created" "$DLOG" \
		|| fail "$1: no overlay made in Ceph: the overlays were not on RBD"
	grep -E -q "overlay /.*created" "$DLOG" && fail "$1: a local overlay was created"
	stop_daemon
}

serve golden 512
serve golden4k 4096
DPID=""
run_pass writable golden -d -t ALL & w1=$!
run_pass writable-4k golden4k -d -t ALL & w2=$!
wait "$w1" "$w2"    # (a bare wait would wait for the daemons too)
# Each daemon's overlay: a data image of the initiator's in the pool.
n=$(timeout 30 rbd ls "$CEPH_POOL" | grep -c "^pristine\..*\.v1\.$INIESC\.[0-9a-f]*\.data$")
[ "$n" -ge 2 ] || fail "rbd ls lists $n data images of the initiator's overlays, not one per daemon"
check_clones golden
check_clones golden4k

{
	conf_classify "$LOGDIR/writable.log"
	conf_classify "$LOGDIR/writable-4k.log" | sed 's/^\([a-z]*\) /\1 4k:/'
} | grep -v '^skip \(4k:\)\?ReadOnly.ReadOnlySBC$' >"$LOGDIR/results.txt"
conf_verdict "conformance on RBD" "$LOGDIR/results.txt" "$DOC"
echo "PASS"
