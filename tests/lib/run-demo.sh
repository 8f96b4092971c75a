#!/bin/sh
# make run: start pristined on a demo image in ./state (created if absent).
# LISTEN=ADDR:PORT overrides the portal (default *:3260), BOOT_LISTEN the
# boot endpoint (default *:8180; "" turns it off).
set -e
cd "$(dirname "$0")/../.."
STATE=${STATE:-state}
IMAGE=${IMAGE:-$STATE/demo.img}
mkdir -p "$STATE"
if [ ! -e "$IMAGE" ]; then
	echo "make run: creating a 64 MiB demo image at $IMAGE"
	truncate -s 64M "$IMAGE"
fi
echo "make run: try it with: iscsi-ls -s iscsi://127.0.0.1:$(echo "${LISTEN:-*:3260}" | sed "s/.*://")"
BOOT_LISTEN=${BOOT_LISTEN-*:8180}
if [ -n "$BOOT_LISTEN" ]; then
	echo "make run: iPXE clients chain to http://THIS-HOST:$(echo "$BOOT_LISTEN" | sed "s/.*://")/boot.ipxe"
	exec build/pristined --image "$IMAGE" --state "$STATE" --listen "${LISTEN:-*:3260}" \
		--boot-listen "$BOOT_LISTEN"
fi
exec build/pristined --image "$IMAGE" --state "$STATE" --listen "${LISTEN:-*:3260}"
