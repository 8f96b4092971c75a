#!/bin/sh
# demo/run.sh - what `make run` runs once the daemon is built: serves the
# demo disk (demo/mkimage.sh; created in STATE if none) with pristined in
# the foreground, its boot endpoint on, so that `make demo-pc` can boot a
# PC from it.  Every PC that boots gets its own overlay in STATE.
#
#   STATE=DIR         state directory (default ./state)
#   IMAGE=FILE        the golden image (default STATE/demo.img)
#   LISTEN=ADDR:PORT  the iSCSI portal (default *:3260)
#   BOOT_LISTEN=ADDR:PORT  the boot endpoint (default *:8180; "" turns it off)
#   CONSOLE_LISTEN=ADDR:PORT  the web console, HTTPS (default *:8443; "" turns it off)
#   METRICS_LISTEN=ADDR:PORT  Prometheus /metrics (default 127.0.0.1:9717; "" = off)
set -e
cd "$(dirname "$0")/.."
STATE=${STATE:-state}
own_image=${IMAGE:-yes}
IMAGE=${IMAGE:-$STATE/demo.img}
LISTEN=${LISTEN:-*:3260}
BOOT_LISTEN=${BOOT_LISTEN-*:8180}
CONSOLE_LISTEN=${CONSOLE_LISTEN-*:8443}
METRICS_LISTEN=${METRICS_LISTEN-127.0.0.1:9717}
mkdir -p "$STATE"
if [ ! -e "$IMAGE" ]; then
	echo "make run: creating the demo disk at $IMAGE (16 MiB; boots under BIOS and UEFI)"
	sh demo/mkimage.sh "$IMAGE"
elif [ "$own_image" = yes ] &&
	[ "$(dd if="$IMAGE" bs=16 skip=32 count=1 status=none 2>/dev/null)" != PRISTINE-DEMO-C1 ]; then
	echo "make run: note: $IMAGE is not the demo disk (an older make run made a blank" \
		"one, which no PC boots): remove $STATE to get the demo disk"
fi
echo "make run: try it with: iscsi-ls -s iscsi://127.0.0.1:$(echo "$LISTEN" | sed "s/.*://")"
# The web console and metrics, when on, as options of every start below.
set --
if [ -n "$CONSOLE_LISTEN" ]; then
	set -- "$@" --console-listen "$CONSOLE_LISTEN"
	echo "make run: web console on https://THIS-HOST:$(echo "$CONSOLE_LISTEN" | sed "s/.*://")/" \
		"(self-signed certificate); set its password first:" \
		"build/pristinectl --state $STATE console passwd"
fi
if [ -n "$METRICS_LISTEN" ]; then
	set -- "$@" --metrics-listen "$METRICS_LISTEN"
	echo "make run: Prometheus metrics on http://$METRICS_LISTEN/metrics"
fi
if [ -z "$BOOT_LISTEN" ]; then
	exec build/pristined --image "$IMAGE" --state "$STATE" --listen "$LISTEN" "$@"
fi
pc_env=""
[ "$LISTEN" != "*:3260" ] && pc_env="LISTEN=$LISTEN "
[ "$BOOT_LISTEN" != "*:8180" ] && pc_env="${pc_env}BOOT_LISTEN=$BOOT_LISTEN "
echo "make run: iPXE clients chain to http://THIS-HOST:$(echo "$BOOT_LISTEN" | sed "s/.*://")/boot.ipxe"
echo "make run: boot a demo PC from another terminal: make demo-pc ${pc_env}[UEFI=1] [PC=2]"
echo "make run: bring PC 1 back to its first boot: build/pristinectl --state $STATE client reset pc-525400de0001 --force"
exec build/pristined --image "$IMAGE" --state "$STATE" --listen "$LISTEN" --boot-listen "$BOOT_LISTEN" "$@"
