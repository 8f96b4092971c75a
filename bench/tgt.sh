#!/bin/bash
# tgt.sh - start and stop a private tgtd (Debian package tgt, the Linux
# SCSI target framework) serving ONE file-backed LUN on loopback, for
# `make bench` (bench/run.sh compares pristined with it).  Never touches the
# system's tgt: its own control port (tgtd -C, so its own control socket
# /run/tgtd/socket.N and lock), its own portal, no /etc/tgt, no
# tgt-admin/targets.conf, no service.  Needs root (tgtd creates /run/tgtd
# and its socket there).
#
# CLI:
#   bench/tgt.sh start --image FILE --portal ADDR:PORT --control N
#                      [--target IQN] [--dir DIR] [--pin CPU]
#                      [--params K=V,K=V] [--threads N]
#                      [--bstype TYPE [--bsopts OPTS]] [--image2 FILE]
#       starts tgtd in the foreground mode (-f) in the background, logging
#       (appending) to DIR/tgtd.log (DIR default: the image's directory), its pid in
#       DIR/tgtd.pid; creates target tid 1 (IQN default
#       iqn.2026-11.org.pristine:bench-tgt), LUN 1 backed by FILE with the
#       default backing store (rdwr: pread/pwrite by a pool of worker
#       threads, -t / --threads, 16 by default; the file opened O_RDWR
#       without O_SYNC/O_DIRECT, write cache on), ACL ALL; --params sets
#       iSCSI target parameters first (e.g. MaxRecvDataSegmentLength=262144);
#       --pin runs tgtd (all its threads) on that CPU (taskset).
#       --bstype another backing store (e.g. rbd, Debian package tgt-rbd:
#       then --image is POOL/IMAGE, not a file) with its --bsopts (rbd:
#       "conf=CEPH.CONF;id=NAME"); the default is tgt's (rdwr).  Returns
#       once the portal accepts connections (at most 10 s).  LUN 0 is the
#       controller tgt always creates: drive LUN 1 (iscsi_bench -l 1).
#       --image2 a second file-backed LUN of the same target, LUN 2 (a
#       PC's game disk beside its boot disk: bench/gamedisk.sh), tgt's
#       default backing store whatever --bstype says.
#   bench/tgt.sh stop --control N [--dir DIR]
#       deletes the target (forced: live sessions are dropped), sets the
#       daemon offline and asks it to exit (tgtadm --mode sys --op delete);
#       SIGKILL after 10 s if it is still there (tgtd ignores SIGTERM);
#       removes its control socket and lock.
#   bench/tgt.sh show --control N
#       tgtadm's view of the target and the daemon (configuration, LUNs,
#       backing store, connected sessions).
#
# As a library (`. bench/tgt.sh`, bash): tgt_start, tgt_stop, tgt_show with
# the same options; tgt_start sets TGT_PID.
#
# Example, by hand:
#   sudo bench/tgt.sh start --image /tmp/x.img --portal 127.0.0.1:13261 --control 13262
#   build/bench/iscsi_bench -p 127.0.0.1:13261 -T iqn.2026-11.org.pristine:bench-tgt -l 1 -w randread -t 5
#   sudo bench/tgt.sh stop --control 13262 --dir /tmp

TGT_IQN_DEFAULT=iqn.2026-11.org.pristine:bench-tgt
TGT_RUN_DIR=/run/tgtd
TGT_PID=""

_tgt_die() {
	echo "tgt.sh: $*" >&2
	return 1
}

# _tgt_opts ARGS...: parse the options into _t_* variables.
_tgt_opts() {
	_t_image="" _t_portal="" _t_ctl="" _t_iqn=$TGT_IQN_DEFAULT _t_dir="" _t_pin=""
	_t_params="" _t_threads="" _t_bstype="" _t_bsopts="" _t_image2=""
	while [ $# -gt 0 ]; do
		[ $# -ge 2 ] || { _tgt_die "option $1 needs a value"; return 1; }
		case $1 in
		--image) _t_image=$2 ;;
		--portal) _t_portal=$2 ;;
		--control) _t_ctl=$2 ;;
		--target) _t_iqn=$2 ;;
		--dir) _t_dir=$2 ;;
		--pin) _t_pin=$2 ;;
		--params) _t_params=$2 ;;
		--threads) _t_threads=$2 ;;
		--bstype) _t_bstype=$2 ;;
		--bsopts) _t_bsopts=$2 ;;
		--image2) _t_image2=$2 ;;
		*) _tgt_die "unknown option $1"; return 1 ;;
		esac
		shift 2
	done
	case $_t_ctl in
	'' | *[!0-9]*) _tgt_die "--control N (a number, not 0: 0 is the system tgtd's) is required"; return 1 ;;
	esac
	# tgtd keeps the control port in a short int.
	if [ "$_t_ctl" -eq 0 ] || [ "$_t_ctl" -gt 32767 ]; then
		_tgt_die "--control must be 1..32767 (0 is the system tgtd's)"
		return 1
	fi
}

# _tgt_alive PID: running (a zombie not yet reaped counts as gone).
_tgt_alive() {
	[ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null
}

_tgtadm() {
	tgtadm -C "$_t_ctl" "$@"
}

tgt_start() {
	local host port cpu=() i
	_tgt_opts "$@" || return 1
	local bs=()
	if [ -n "$_t_bstype" ]; then
		[ -n "$_t_image" ] && [ -n "$_t_dir" ] || { _tgt_die "--bstype needs --image and --dir"; return 1; }
		bs=(--bstype "$_t_bstype")
		[ -n "$_t_bsopts" ] && bs+=(--bsopts "$_t_bsopts")
	else
		[ -n "$_t_image" ] && [ -f "$_t_image" ] || { _tgt_die "--image FILE (an existing file) is required"; return 1; }
	fi
	[ -n "$_t_portal" ] || { _tgt_die "--portal ADDR:PORT is required"; return 1; }
	[ -z "$_t_image2" ] || [ -f "$_t_image2" ] || { _tgt_die "--image2 FILE: no such file"; return 1; }
	command -v tgtd >/dev/null && command -v tgtadm >/dev/null ||
		{ _tgt_die "tgtd/tgtadm not found: install the Debian package tgt (make bench does)"; return 1; }
	[ "$(id -u)" -eq 0 ] || { _tgt_die "tgtd needs root (it creates $TGT_RUN_DIR)"; return 1; }
	[ -n "$_t_dir" ] || _t_dir=$(dirname "$_t_image")
	host=${_t_portal%:*} port=${_t_portal##*:}
	# Our control port must be free: another tgtd answering on it is not ours.
	if _tgtadm --mode sys --op show >/dev/null 2>&1; then
		_tgt_die "a tgtd already answers on control port $_t_ctl; not touching it"
		return 1
	fi
	mkdir -p "$TGT_RUN_DIR"
	[ -n "$_t_pin" ] && command -v taskset >/dev/null && cpu=(taskset -c "$_t_pin")
	local extra=()
	[ -n "$_t_threads" ] && extra=(-t "$_t_threads")
	"${cpu[@]}" tgtd -f -C "$_t_ctl" "${extra[@]}" --iscsi "portal=$_t_portal" \
		>>"$_t_dir/tgtd.log" 2>&1 </dev/null &
	TGT_PID=$!
	echo "$TGT_PID" >"$_t_dir/tgtd.pid"
	# Its control socket first (bounded).
	for i in $(seq 100); do
		_tgtadm --mode sys --op show >/dev/null 2>&1 && break
		_tgt_alive "$TGT_PID" || { _tgt_die "tgtd exited:"; tail "$_t_dir/tgtd.log" >&2; TGT_PID=""; return 1; }
		[ "$i" -lt 100 ] || { _tgt_die "tgtd's control socket did not come up in 10 s"; tgt_stop --control "$_t_ctl" --dir "$_t_dir"; return 1; }
		sleep 0.1
	done
	if ! _tgtadm --lld iscsi --op new --mode target --tid 1 --targetname "$_t_iqn" ||
	   ! _tgt_set_params ||
	   ! _tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 --backing-store "$_t_image" "${bs[@]}" ||
	   { [ -n "$_t_image2" ] && ! _tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 --backing-store "$_t_image2"; } ||
	   ! _tgtadm --lld iscsi --op bind --mode target --tid 1 --initiator-address ALL; then
		_tgt_die "configuring tgtd failed (log: $_t_dir/tgtd.log)"
		tgt_stop --control "$_t_ctl" --dir "$_t_dir"
		return 1
	fi
	# The portal (bounded): bash's /dev/tcp, a connect and close.
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	_tgt_die "tgtd does not accept connections on $_t_portal"
	tgt_stop --control "$_t_ctl" --dir "$_t_dir"
	return 1
}

# --params K=V,K=V: iSCSI target parameters (tgtadm --op update --mode
# target --name K --value V), before any session logs in.
_tgt_set_params() {
	local kv
	[ -n "$_t_params" ] || return 0
	for kv in ${_t_params//,/ }; do
		_tgtadm --lld iscsi --op update --mode target --tid 1 --name "${kv%%=*}" --value "${kv#*=}" || return 1
	done
}

tgt_stop() {
	local pid="" i
	_tgt_opts "$@" || return 1
	[ -n "$_t_dir" ] && [ -f "$_t_dir/tgtd.pid" ] && pid=$(cat "$_t_dir/tgtd.pid")
	[ -n "$pid" ] || pid=$TGT_PID
	if _tgtadm --mode sys --op show >/dev/null 2>&1; then
		_tgtadm --lld iscsi --op delete --force --mode target --tid 1 >/dev/null 2>&1 || true
		_tgtadm --mode sys --op update --name State --value offline >/dev/null 2>&1 || true
		_tgtadm --mode sys --op delete >/dev/null 2>&1 || true
	fi
	if [ -n "$pid" ]; then
		for i in $(seq 100); do
			_tgt_alive "$pid" || break
			sleep 0.1
		done
		if _tgt_alive "$pid"; then
			echo "tgt.sh: tgtd $pid did not exit in 10 s; SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	fi
	# Our socket and its lock only (tgtd leaves them behind).
	rm -f "$TGT_RUN_DIR/socket.$_t_ctl" "$TGT_RUN_DIR/socket.$_t_ctl.lock"
	[ -n "$_t_dir" ] && rm -f "$_t_dir/tgtd.pid"
	TGT_PID=""
	return 0
}

tgt_show() {
	_tgt_opts "$@" || return 1
	_tgtadm --lld iscsi --op show --mode target
	_tgtadm --mode sys --op show
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	start)
		tgt_start "$@" || exit 1
		echo "tgtd pid $TGT_PID, target ${_t_iqn} LUN 1 = $_t_image${_t_image2:+, LUN 2 = $_t_image2} at $_t_portal, control port $_t_ctl"
		;;
	stop) tgt_stop "$@" ;;
	show) tgt_show "$@" ;;
	*)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
fi
