# tests/lib/keepalived.sh - keepalived (VRRP, Debian's `keepalived`) in
# the gateway namespaces of tests/lib/netlab.sh, which sources it.
#
#   netlab_keepalived GW TRACK-CMD
#       writes $NETLAB_DIR/keepalived-GW.conf and starts keepalived in
#       GW's namespace (gw1, gw2, ...): one VRRP instance per gateway K of
#       the lab, for K's service address (netlab_vip K) on the PC net
#       (link pc0, virtual router id 10+K, advert_int 1).  The home
#       gateway of a VIP has priority 150; the others back it up with
#       100, 99, ... in the order gwK+1, gwK+2, ... (wrapping), so each
#       VIP has one well-defined next owner.  Preemption is on (the
#       default): a VIP goes back to its home gateway once that gateway is
#       healthy again.  Every instance tracks TRACK-CMD (a shell command,
#       run by keepalived as root every second with a 2 s timeout; the
#       real one is `pristinectl --socket S cluster health`): one failure
#       puts all of GW's instances in FAULT, which releases every VIP it
#       holds; one success brings them back.  A gateway whose link on the
#       PC net loses its carrier goes to FAULT likewise.
#       keepalived runs in the foreground (-n), logs to the console (-l
#       -D, not syslog: -G), which is $NETLAB_DIR/keepalived-GW.log, VRRP
#       only (-P), with its own pid files; NETLAB_KA[GW] is its PID (stop it with netlab_stop).
#
# Failover takes about 3 adverts plus skew (3.6 s) when the master goes
# silent, and under a second when the master says it leaves (FAULT, or
# SIGTERM: it sends priority 0).  A VIP's new owner sends gratuitous ARPs,
# so the PC's neighbour entry follows.
declare -A NETLAB_KA

netlab_keepalived() {
	local gw=$1 track=$2 k j prio conf vip
	k=${gw#gw}
	conf=$NETLAB_DIR/keepalived-$gw.conf
	printf '#!/bin/sh\n%s\n' "$track" >"$NETLAB_DIR/$gw.track"
	chmod 0700 "$NETLAB_DIR/$gw.track"
	{
		echo "global_defs {"
		echo "    router_id $gw"
		echo "    script_user root"
		echo "    enable_script_security"
		echo "}"
		echo "vrrp_script track {"
		echo "    script \"$NETLAB_DIR/$gw.track\""
		echo "    interval 1"
		echo "    timeout 2"
		echo "    fall 1"
		echo "    rise 1"
		echo "}"
		for j in $(seq 1 "$NETLAB_GWS"); do
			vip=$(netlab_vip "$j")
			if [ "$j" -eq "$k" ]; then
				prio=150
			else
				# gwJ+1 is the first backup of gwJ's VIP, gwJ+2 the next...
				prio=$((100 - ((k - j + NETLAB_GWS) % NETLAB_GWS) + 1))
			fi
			echo "vrrp_instance vip$j {"
			echo "    state BACKUP"
			echo "    interface pc0"
			echo "    virtual_router_id $((10 + j))"
			echo "    priority $prio"
			echo "    advert_int 1"
			echo "    virtual_ipaddress {"
			echo "        $vip/24 dev pc0"
			echo "    }"
			echo "    track_script {"
			echo "        track"
			echo "    }"
			echo "}"
		done
	} >"$conf"
	netlab_bg "$gw" "$NETLAB_DIR/keepalived-$gw.log" keepalived -n -l -D -G -P -f "$conf" \
		-p "$NETLAB_DIR/keepalived-$gw.pid" -r "$NETLAB_DIR/keepalived-$gw.vrrp.pid"
	NETLAB_KA[$gw]=$NETLAB_PID
}
