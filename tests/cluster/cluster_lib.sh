# tests/cluster/cluster_lib.sh - two or three pristined gateways of one
# cluster on 127.0.0.1 for the tests in tests/cluster (sourced after
# common.sh, images.sh and ceph.sh):
#
#   cluster_setup N      the single-node Ceph (memstore), client.pristine,
#                        a patterned golden ($CEPH_POOL/golden@v1, MIB MiB,
#                        $tmpdir/golden.raw) and the configurations of
#                        gateways gw1..gwN: state $tmpdir/stateI, portal
#                        127.0.0.1:PORTI, cluster-dead-after $DEAD_AFTER
#   gw_start I           start gateway I (log $tmpdir/gwI.log), wait until
#                        it listens; GWPID[I]
#   gw_kill I            kill -9 gateway I (by its PID)
#   gw_stop I            SIGTERM, wait; fails on a sanitizer report or an
#                        exit status other than 0
#   gwctl I ARGS...      pristinectl on gateway I's socket; output in OUT,
#                        fails the test when it fails
#   cluster_image        image add golden --rbd on gw1, and its image.json
#                        copied to every other gateway's state directory
#                        when it is a local file (until the records live in
#                        RADOS, branch `records`, gateways do not share
#                        image records; the tests restart gw2 after it);
#                        TGT is its target
#   pc_inq I IQN         log in as IQN at gateway I's portal (iscsi-inq,
#                        which follows redirects) and log out; 0 on success
#
# The beat is shortened (PRISTINE_CLUSTER_BEAT_MS=300) so that the tests
# run in seconds; everything is stopped by PID at exit.
DEAD_AFTER=${DEAD_AFTER:-3}
MIB=${MIB:-8}
declare -a GWPID GWPORT

cluster_cleanup() {
	local i
	for i in "${!GWPID[@]}"; do
		[ -n "${GWPID[$i]}" ] && kill -KILL "${GWPID[$i]}" 2>/dev/null
	done
	ceph_stop
	cleanup_common
}

cluster_setup() {
	local n=$1 i
	ceph_start "$tmpdir/ceph" "${CEPH_OBJECTSTORE:-memstore}"
	trap cluster_cleanup EXIT
	PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
	make_image "$tmpdir/golden.raw" "$MIB"
	timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
	timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null ||
		fail "rbd snap create"
	for i in $(seq 1 "$n"); do
		GWPORT[$i]=$(free_port)
		mkdir -p "$tmpdir/state$i"
		cat >"$tmpdir/gw$i.conf" <<EOC
[server]
state = $tmpdir/state$i
listen = 127.0.0.1:${GWPORT[$i]}
nop-interval = 0
ceph-conf = $PCONF
ceph-id = pristine
cluster-name = gw$i
cluster-dead-after = $DEAD_AFTER
EOC
	done
}

gw_start() {
	local i=$1 log=$tmpdir/gw$1.log before
	before=$(grep -c listening "$log" 2>/dev/null) || before=${before:-0}
	PRISTINE_CLUSTER_BEAT_MS=300 "$PRISTINED" -c "$tmpdir/gw$i.conf" >>"$log" 2>&1 &
	GWPID[$i]=$!
	for _ in $(seq 1 200); do
		[ "$(grep -c listening "$log")" -gt "$before" ] && return 0
		kill -0 "${GWPID[$i]}" 2>/dev/null || { tail -n 30 "$log"; fail "gw$i exited at start"; }
		sleep 0.1
	done
	tail -n 30 "$log"; fail "gw$i did not start listening"
}

gw_kill() {
	kill -KILL "${GWPID[$1]}" 2>/dev/null
	wait "${GWPID[$1]}" 2>/dev/null
	GWPID[$1]=""
}

gw_stop() {
	local rc=0 log=$tmpdir/gw$1.log
	kill -TERM "${GWPID[$1]}" 2>/dev/null
	wait "${GWPID[$1]}" || rc=$?
	GWPID[$1]=""
	if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
		cat "$log"; fail "sanitizer report in gw$1's log"
	fi
	[ "$rc" -eq 0 ] || { tail -n 30 "$log"; fail "gw$1 exited with status $rc"; }
}

gwctl() {
	local i=$1
	shift
	OUT=$("$CTL" --state "$tmpdir/state$i" "$@" 2>&1) || { echo "$OUT"; fail "pristinectl (gw$i) $*"; }
}

cluster_image() {
	local i
	gwctl 1 image add golden --rbd "$CEPH_POOL/golden@v1"
	TGT=$(echo "$OUT" | grep -o 'iqn[^ ]*' | head -n 1)
	[ -n "$TGT" ] || { echo "$OUT"; fail "image add --rbd said no target"; }
	# records in RADOS (branch records): every gateway has the image already
	[ -f "$tmpdir/state1/images/golden/image.json" ] || return 0
	for i in "${!GWPORT[@]}"; do
		[ "$i" = 1 ] && continue
		mkdir -p "$tmpdir/state$i/images/golden"
		cp "$tmpdir/state1/images/golden/image.json" "$tmpdir/state$i/images/golden/" ||
			fail "copy image.json to gw$i"
	done
}

pc_inq() {
	timeout 30 iscsi-inq -i "$2" "iscsi://127.0.0.1:${GWPORT[$1]}/$TGT/0" >/dev/null 2>&1
}

# The number of PCs the placement puts on gateway NAME (cluster status --json of gw I).
placed() {
	gwctl "$1" --json cluster status
	echo "$OUT" | jq -r --arg g "$2" '[.pcs[] | select(.gateway == $g)] | length'
}
