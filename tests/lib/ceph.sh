# tests/lib/ceph.sh - a throwaway single-node Ceph cluster for tests.
# Source it after common.sh:  . "$TOP/tests/lib/ceph.sh"
#
#   ceph_start DIR [OBJECTSTORE]
#       one ceph-mon and one ceph-osd (Debian 12's Ceph 16 "pacific"),
#       everything under DIR (config, keyrings, mon store, OSD store,
#       run and log directories, admin sockets), bound to 127.0.0.1 on
#       free ports, cephx on, no mgr, one pool "rbd" of 8 PGs, size 1.
#       OBJECTSTORE: memstore (the default: the OSD keeps its objects in RAM,
#       at most 1 GiB; up in ~6 s here) or bluestore (on a sparse file in
#       DIR; up in ~10 s here).
#       Sets CEPH_CONF (the cluster's ceph.conf, with client.admin's
#       keyring), CEPH_MON (ADDR:PORT), CEPH_POOL, CEPH_MON_PID, CEPH_OSD_PID
#       and exports CEPH_ARGS so that ceph/rbd/rados talk to it.  Every
#       wait is bounded; on failure it prints the daemons' logs and fails.
#   ceph_add_client NAME CAPS...
#       a cephx user client.NAME with the given caps; its key goes into
#       DIR/client.NAME.keyring, which a second conf DIR/NAME.conf names
#       (prints that conf's path).
#   ceph_stop
#       SIGTERM to both daemons by PID, SIGKILL after 10 s; called from
#       the EXIT trap that ceph_start installs (chained with common.sh's,
#       which removes the temporary directory), so a failing test leaves
#       no daemon behind.  Nothing is written under /etc/ceph or
#       /var/lib/ceph and no systemd unit is involved.
#
# In a network namespace (tests/lib/netlab.sh sets these three):
#   CEPH_ADDR       the address the daemons bind to (default 127.0.0.1)
#   CEPH_NETNS      a namespace to run ceph-mon, ceph-osd and the
#                   ceph/rbd/rados CLI in (ip netns exec): ceph_start puts
#                   wrappers for them in DIR/bin, first on PATH, so that
#                   every call here and in the test reaches the cluster
#   CEPH_EXIT_TRAP  what the EXIT trap runs after ceph_stop (default
#                   cleanup_common)
# Unset, everything is as on 127.0.0.1 in the test's own namespace.
#
# Settings that matter on one node: pool size 1 allowed, CRUSH choosing
# among OSDs (chooseleaf type 0), the PG autoscaler off, IPv4 only; the mgr
# is not started (librbd does not need it; MGR_DOWN is muted).
CEPH_MON_PID=""
CEPH_OSD_PID=""
CEPH_DIR=""
CEPH_POOL=rbd

ceph_stop() {
	local p
	for p in $CEPH_OSD_PID $CEPH_MON_PID; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $CEPH_OSD_PID $CEPH_MON_PID; do
		for _ in $(seq 1 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	CEPH_OSD_PID=""
	CEPH_MON_PID=""
}

# Print the daemons' logs (tails) and fail.
ceph_fail() {
	local f
	for f in "$CEPH_DIR"/log/*.log "$CEPH_DIR"/*.out; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
	done
	fail "ceph: $*"
}

# ceph_wait SECONDS CMD...: run CMD every 0.2 s until it succeeds; 1 on timeout.
ceph_wait() {
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

ceph_osd_up() {
	ceph osd dump 2>/dev/null | grep -q '^osd\.0 up'
}

# Without a mgr the monitors keep no PG statistics: the pool is ready
# when an object can be written to it (and removed again).
ceph_pool_writable() {
	timeout 10 rados -p "$CEPH_POOL" put pristine-probe "$CEPH_CONF" &&
		timeout 10 rados -p "$CEPH_POOL" rm pristine-probe
}

# ceph_netns_wrappers DIR: DIR/bin/ceph-mon, ceph-osd, ceph, rbd and rados
# run the real ones in $CEPH_NETNS; DIR/bin goes first on PATH.
ceph_netns_wrappers() {
	local t real
	mkdir -p "$1/bin"
	for t in ceph-mon ceph-osd ceph rbd rados; do
		real=$(command -v "$t") || continue
		printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$CEPH_NETNS" "$real" >"$1/bin/$t"
		chmod +x "$1/bin/$t"
	done
	PATH=$1/bin:$PATH
}

ceph_start() {
	local dir=$1 store=${2:-memstore} port fsid uuid
	CEPH_DIR=$dir
	mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log"
	[ -n "${CEPH_NETNS:-}" ] && ceph_netns_wrappers "$dir"
	port=$(free_port)
	CEPH_MON=${CEPH_ADDR:-127.0.0.1}:$port
	fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
	uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
	CEPH_CONF=$dir/ceph.conf
	cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:$CEPH_MON
public addr = ${CEPH_ADDR:-127.0.0.1}
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/\$name.keyring
run dir = $dir/run
auth allow insecure global id reclaim = false
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
mon health mute = MGR_DOWN
[mon]
mon data = $dir/mon
keyring = $dir/mon/keyring
admin socket = $dir/run/\$name.asok
mon cluster log file = $dir/log/cluster.log
[osd]
osd data = $dir/osd
admin socket = $dir/run/\$name.asok
osd objectstore = $store
bluestore block path = $dir/osd/block.img
bluestore block create = true
bluestore block size = ${CEPH_BLUESTORE_BYTES:-2147483648}
bluestore fsck on mount = false
memstore device bytes = 1073741824
osd memory target = 939524096
osd crush update on start = true
osd max object name len = 460
osd max object namespace len = 64
EOF
	ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. \
		--cap mon 'allow *' >/dev/null || ceph_fail "mon keyring"
	ceph-authtool --create-keyring "$dir/client.admin.keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null ||
		ceph_fail "admin keyring"
	ceph-authtool --create-keyring "$dir/osd.0.keyring" --gen-key -n osd.0 \
		--cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' \
		>/dev/null || ceph_fail "osd keyring"
	cp "$dir/mon.keyring" "$dir/mon.all.keyring"
	ceph-authtool "$dir/mon.all.keyring" --import-keyring "$dir/client.admin.keyring" >/dev/null
	ceph-authtool "$dir/mon.all.keyring" --import-keyring "$dir/osd.0.keyring" >/dev/null
	monmaptool --create --fsid "$fsid" --addv a "[v2:$CEPH_MON]" "$dir/monmap" >/dev/null ||
		ceph_fail "monmaptool"
	ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$dir/monmap" \
		--keyring "$dir/mon.all.keyring" >"$dir/mon-mkfs.out" 2>&1 || ceph_fail "ceph-mon --mkfs"
	export CEPH_ARGS="-c $CEPH_CONF --name client.admin"
	CEPH_ARGS= ceph-mon -c "$CEPH_CONF" -i a -f >"$dir/mon.out" 2>&1 &
	CEPH_MON_PID=$!
	trap "ceph_stop; ${CEPH_EXIT_TRAP:-cleanup_common}" EXIT
	ceph_wait 30 timeout 10 ceph mon stat || ceph_fail "the monitor did not answer in 30 s"
	timeout 20 ceph osd new "$uuid" 0 >/dev/null 2>&1 || ceph_fail "ceph osd new"
	CEPH_ARGS= timeout 60 ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$uuid" \
		>"$dir/osd-mkfs.out" 2>&1 || ceph_fail "ceph-osd --mkfs"
	CEPH_ARGS= ceph-osd -c "$CEPH_CONF" -i 0 -f >"$dir/osd.out" 2>&1 &
	CEPH_OSD_PID=$!
	ceph_wait 40 ceph_osd_up || ceph_fail "osd.0 not up in 40 s"
	timeout 20 ceph osd pool create "$CEPH_POOL" 8 8 >/dev/null 2>&1 || ceph_fail "pool create"
	timeout 20 ceph osd pool application enable "$CEPH_POOL" rbd >/dev/null 2>&1 ||
		ceph_fail "pool application enable"
	ceph_wait 40 ceph_pool_writable || ceph_fail "pool $CEPH_POOL not writable in 40 s"
}

ceph_add_client() {
	local name=$1
	shift
	timeout 20 ceph auth get-or-create "client.$name" "$@" \
		-o "$CEPH_DIR/client.$name.keyring" >/dev/null 2>&1 || ceph_fail "auth get-or-create client.$name"
	sed -e '/^keyring = /d' "$CEPH_CONF" >"$CEPH_DIR/$name.conf"
	sed -i -e "/^\[global\]/a keyring = $CEPH_DIR/client.$name.keyring" "$CEPH_DIR/$name.conf"
	echo "$CEPH_DIR/$name.conf"
}

# ceph_golden_conf MIB STATE: the usual start of a test on an image on RBD
# (after ceph_start): client.pristine (profile rbd; its conf in PCONF), a
# MIB MiB patterned golden ($tmpdir/golden.raw, tests/lib/images.sh)
# imported as $CEPH_POOL/golden with snapshot v1, SHA its content (compare
# with snap_sha at the end), PORT free, and $tmpdir/pristine.conf serving
# it as image golden with state STATE.
snap_sha() { timeout 60 rbd export --no-progress "$CEPH_POOL/golden@v1" - | sha256sum; }
ceph_golden_conf() {
	local mib=$1 state=$2
	PCONF=$(ceph_add_client pristine mon 'profile rbd' osd 'profile rbd')
	make_image "$tmpdir/golden.raw" "$mib"
	timeout 60 rbd import --no-progress "$tmpdir/golden.raw" "$CEPH_POOL/golden" || fail "rbd import"
	timeout 30 rbd snap create --no-progress "$CEPH_POOL/golden@v1" >/dev/null ||
		fail "rbd snap create"
	SHA=$(snap_sha)
	PORT=$(free_port)
	cat >"$tmpdir/pristine.conf" <<EOF2
[server]
state = $state
listen = 127.0.0.1:$PORT
nop-interval = 0
ceph-conf = $PCONF
ceph-id = pristine

[image golden]
rbd = $CEPH_POOL/golden@v1
EOF2
}

# ceph_data_objects PREFIX: every object of $CEPH_POOL whose name starts
# with PREFIX. (an RBD image's block_name_prefix: its data objects), one
# line each with its size and mtime as the OSD reports them - a write
# would change them.
ceph_data_objects() {
	local o
	timeout 30 rados -p "$CEPH_POOL" ls | grep "^$1\." | sort | while read -r o; do
		echo "$o $(timeout 10 rados -p "$CEPH_POOL" stat "$o" | sed 's/^.* mtime //')"
	done
}

# start_daemon_conf_port: start pristined on $tmpdir/pristine.conf with its
# listen = line set to a free port (PORT) - again after each stop.
start_daemon_conf_port() {
	PORT=$(free_port)
	sed -i "/^listen = /d; /^\[server\]/a listen = 127.0.0.1:$PORT" "$tmpdir/pristine.conf"
	start_daemon_conf "$tmpdir/pristine.conf"
}

# A client's overlay kept in Ceph (storage/ovl_ceph.h), named by its DIR
# (the image part of its overlay_dir: pristine.<uid>.v<N>.<initiator>):
#   ovl_inst DIR      its live instance (the marker's xattr "inst"), empty
#                     when DIR has no marker
#   ovl_data DIR      its live data image, DIR.INST.data, if rbd ls lists it
#   ovl_left DIR INST what instance INST of DIR still holds in the pool:
#                     its data image, its objects, its key in the marker's
#                     omap (nothing once a purge reclaimed it)
ovl_inst() {
	timeout 30 rados -p "$CEPH_POOL" getxattr "$1" inst 2>/dev/null | tr -d '\0\n'
}
ovl_data() {
	local inst
	inst=$(ovl_inst "$1")
	[ -n "$inst" ] || return 0
	timeout 30 rbd ls "$CEPH_POOL" | grep -Fx "$1.$inst.data" || true
}
ovl_left() {
	timeout 30 rbd ls "$CEPH_POOL" | grep -Fx "$1.$2.data"
	timeout 30 rados -p "$CEPH_POOL" ls | grep -F "$1.$2." | grep -v '^rbd_' || true
	timeout 30 rados -p "$CEPH_POOL" listomapkeys "$1" 2>/dev/null | grep -Fx "$2" || true
}

# Preambles the tests in tests/ceph share:
#   ceph_needs TOOL...     skip the test unless the Ceph tools (ceph-mon,
#                          ceph-osd, ceph, rados, rbd) and each TOOL are
#                          installed
#   ceph_needs_daemon TOOL...
#                          the same, and skip unless $PRISTINED and $CTL
#                          are built
#   ceph_fail_shows_log    from now on a failure (fail) also prints the
#                          tail of the daemon's log ($DLOG) when there is one
ceph_needs() {
	local tool
	for tool in ceph-mon ceph-osd ceph rados rbd "$@"; do
		command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
	done
}
ceph_needs_daemon() {
	ceph_needs "$@"
	[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
	[ -x "$CTL" ] || skip "$CTL not built (make)"
}
ceph_fail_shows_log() {
	fail() { echo "FAIL: $*"; [ -f "${DLOG:-/nonexistent}" ] && tail -n 40 "$DLOG"; exit 1; }
}

# ceph_checker NAME BIN PHASE ARGS...: one phase of a cluster checker
# (tests/ceph/*_check.c) on this cluster as client.admin: its output is
# printed and kept in $tmpdir/check.out; a sanitizer report on its stderr
# or an exit status other than 0 fails the test.
ceph_checker() {
	local name=$1 bin=$2 rc
	shift 2
	timeout 300 "$bin" "$CEPH_CONF" "$CEPH_POOL" "$@" >"$tmpdir/check.out" 2>"$tmpdir/check.err"
	rc=$?
	cat "$tmpdir/check.out"
	grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmpdir/check.err" &&
		{ cat "$tmpdir/check.err"; fail "sanitizer report in $name $1"; }
	[ "$rc" -eq 0 ] || { tail -n 20 "$tmpdir/check.err"; fail "$name $1 (rc $rc)"; }
}

# ceph_ratios_script PATH: write PATH, a script that sets the OSDs'
# nearfull, backfillfull and full ratios to its three arguments (as the
# cluster's admin; status 0 when all three were set).  "PATH 0.001 0.002
# 0.003" makes the pool full, "PATH 0.85 0.90 0.95" gives it back.
ceph_ratios_script() {
	cat >"$1" <<EOS
#!/bin/sh
export CEPH_ARGS="$CEPH_ARGS"
timeout 20 ceph osd set-nearfull-ratio "\$1" >/dev/null 2>&1 &&
	timeout 20 ceph osd set-backfillfull-ratio "\$2" >/dev/null 2>&1 &&
	timeout 20 ceph osd set-full-ratio "\$3" >/dev/null 2>&1
EOS
	chmod +x "$1"
}
