#!/usr/bin/env bash
# Issue 4, "what it must show" 3: bad input to the image verbs and the
# admin API.  Every case must fail with a clear message and the documented
# exit status (1: the daemon refused, 2: usage), and leave the state as it
# was: the JSON of `image versions` of every image, every
# STATE/images/*/image.json and the file lists of STATE/images and
# STATE/imported are compared before and after each case.
# Cases: unknown image or client, rollback to a missing version, commit
# with no draft or without -m, discard with no draft, two drafts of one
# image, export to an existing file / a relative path (API) / a bad
# format / a missing version, image add of a missing file, a size not a
# multiple of the block size, a duplicate name or target, a bad name, a
# relative path (API), import of a missing file and of non-images, add
# and import into Ceph RBD without ceph-conf (and the API's rbd fields
# misused), a draft on a version that already stacks 250 layers (the chain limit).
# (An invalid [image] line in a configuration file is covered by
# tests/config/test_config_mode.sh: reported as FILE:LINE, no start.)
. "$(dirname "$0")/../lib/common.sh"
for tool in jq curl qemu-img cmp; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
. "$TOP/tests/lib/images.sh"
[ -x "$CTL" ] || skip "$CTL not built (make)"

STATE=$tmpdir/state
GTARGET=iqn.2026-11.org.pristine:golden
make_image "$tmpdir/dummy.raw" 1
make_image "$tmpdir/golden.raw" 4
start_daemon --image "$tmpdir/dummy.raw" --state "$STATE"
ctl_ok image add golden "$tmpdir/golden.raw"
# Some history, so that a refused change has something to spoil: v2, and
# v1 current again.
ctl_ok image edit golden --client iqn.2024-01.test:maint
qio iqn.2024-01.test:maint -c "write -P 0x5e 0 64k"
ctl_ok image commit golden -m "v2"
ctl_ok image rollback golden 1
ctl_ok client add iqn.2024-01.test:pc01 --name pc01 --image golden

snapshot() {
	{
		ctl --json image list | jq -S 'del(.images[].draft.used_bytes)'
		for i in $(ctl --json image list | jq -r '.images[].name'); do
			ctl --json image versions "$i" | jq -S 'del(.draft.used_bytes) | del(.version_list[].layer_bytes)'
		done
		for f in "$STATE"/images/*/image.json; do echo "== $f"; cat "$f"; done
		(cd "$STATE" && { find images -path '*/layers/*/*' -prune -o -print; find imported -type f; } 2>/dev/null | sort)
	} >"$1"
}
api() {   # METHOD PATH [JSON]: prints "STATUS BODY"
	local a=(-s -o "$tmpdir/api.out" -w '%{http_code}' --unix-socket "$STATE/pristined.sock" -X "$1" "http://x$2")
	[ $# -ge 3 ] && a+=(-H 'Content-Type: application/json' -d "$3")
	local code
	code=$(timeout 30 curl "${a[@]}")
	echo "$code $(cat "$tmpdir/api.out")"
}
n=0
# refused CODE REGEX ARGS...: a CLI case that must change nothing.
refused() {
	snapshot "$tmpdir/before"
	ctl_err "$@"
	snapshot "$tmpdir/after"
	diff -u "$tmpdir/before" "$tmpdir/after" || fail "pristinectl ${*:3} changed the state"
	n=$((n + 1))
}
# api_refused STATUS REGEX METHOD PATH [JSON]: the same through the API.
api_refused() {
	local want=$1 re=$2 res
	shift 2
	snapshot "$tmpdir/before"
	res=$(api "$@")
	echo "API $* -> $res"
	[ "${res%% *}" = "$want" ] || fail "API $*: status ${res%% *}, expected $want"
	echo "${res#* }" | jq -e .error >/dev/null || fail "API $*: no JSON error message"
	echo "${res#* }" | grep -E -i -q -- "$re" || fail "API $*: message does not match /$re/"
	snapshot "$tmpdir/after"
	diff -u "$tmpdir/before" "$tmpdir/after" || fail "API $* changed the state"
	n=$((n + 1))
}

echo "== unknown images, clients, versions"
refused 1 "no image nosuch" image versions nosuch
refused 1 "no image nosuch" image edit nosuch --client pc01
refused 1 "no image nosuch" image commit nosuch -m x
refused 1 "no image nosuch" image discard nosuch
refused 1 "no image nosuch" image rollback nosuch 1
refused 1 "no image nosuch" image flatten nosuch
refused 1 "no image nosuch" image export nosuch 1 "$tmpdir/x.raw"
refused 1 "no client nobody" image edit golden --client nobody
refused 1 "no version 3" image rollback golden 3
refused 1 "no version 9" image export golden 9 "$tmpdir/x.raw"
refused 2 "VERSION must be a number" image rollback golden two
refused 2 "VERSION must be a number" image rollback golden 0
refused 1 "no client nobody" client reset nobody
api_refused 404 "no image" POST /v1/images/nosuch/rollback '{"version": 1}'
api_refused 404 "no version 7" POST /v1/images/golden/rollback '{"version": 7}'
api_refused 400 "version" POST /v1/images/golden/rollback '{"version": -1}'
api_refused 400 "version" POST /v1/images/golden/rollback '{}'
api_refused 404 "no image action" POST /v1/images/golden/explode '{}'
[ ! -e "$tmpdir/x.raw" ] || fail "a refused export created its file"

echo "== commit and discard without a draft, commit without a message"
refused 1 "no draft" image commit golden -m "nothing"
refused 1 "no draft" image discard golden
refused 2 "needs -m" image commit golden
api_refused 400 "message" POST /v1/images/golden/commit '{}'
api_refused 400 "message" POST /v1/images/golden/commit '{"message": ""}'

echo "== two drafts of one image"
ctl_ok image edit golden --client pc01
refused 1 "already has a draft" image edit golden --client iqn.2024-01.test:other
refused 1 "already has a draft" image edit golden --client pc01
api_refused 400 "message" POST /v1/images/golden/commit '{"message": ""}'
refused 1 "draft open" image rollback golden 2
ctl_ok image discard golden

echo "== export"
: >"$tmpdir/exists.raw"
refused 1 "exists.*--force" image export golden 1 "$tmpdir/exists.raw"
[ ! -s "$tmpdir/exists.raw" ] || fail "a refused export wrote into an existing file"
refused 1 "format" image export golden 1 "$tmpdir/y.img" --format nosuchformat
api_refused 400 "absolute" POST /v1/images/golden/export '{"version": 1, "file": "relative.raw"}'
api_refused 400 "file" POST /v1/images/golden/export '{"version": 1}'
mkdir "$tmpdir/adir"
refused 1 "not a regular file" image export golden 1 "$tmpdir/adir" --force
refused 1 "nodir.*(no such|not a) directory" image export golden 1 "$tmpdir/nodir/z.raw"
[ ! -e "$tmpdir/y.img" ] || fail "a refused export created its file"
ctl_ok image export golden 1 "$tmpdir/exists.raw" --force
cmp "$tmpdir/exists.raw" "$tmpdir/golden.raw" || fail "export --force did not replace the file with v1"

echo "== image add"
head -c 1000 /dev/urandom >"$tmpdir/odd.raw"
make_image "$tmpdir/other.raw" 1
refused 1 "No such file" image add new "$tmpdir/missing.raw"
refused 1 "whole number of blocks" image add new "$tmpdir/odd.raw"
refused 1 "already called golden" image add golden "$tmpdir/other.raw"
refused 1 "image name" image add "Bad Name" "$tmpdir/other.raw"
refused 1 "image name" image add ../up "$tmpdir/other.raw"
refused 1 "already uses target" image add other "$tmpdir/other.raw" --target "$GTARGET"
refused 1 "target name" image add other "$tmpdir/other.raw" --target "not a target"
refused 2 "block-size" image add other "$tmpdir/other.raw" --block-size 1000
api_refused 400 "absolute" POST /v1/images '{"name": "rel", "path": "rel.raw"}'
api_refused 400 "required" POST /v1/images '{"name": "rel"}'
api_refused 400 "import" POST /v1/images '{"name": "q", "path": "/x.qcow2", "format": "qcow2"}'
api_refused 400 "block size" POST /v1/images "{\"name\": \"b\", \"path\": \"$tmpdir/other.raw\", \"block_size\": 1024}"
refused 1 "whole number of blocks" image add other4k "$tmpdir/odd.raw" --block-size 4096

echo "== import of non-images"
echo "this is not a disk image" >"$tmpdir/text.txt"
refused 1 "No such file|cannot" image import imp "$tmpdir/missing.qcow2"
refused 1 "not in qcow2 format" image import imp "$tmpdir/text.txt" --format qcow2
refused 1 "text.txt is not a disk image" image import imp "$tmpdir/text.txt"
refused 1 "already called golden" image import golden "$tmpdir/text.txt"
refused 1 "format" image import imp "$tmpdir/text.txt" --format nosuch
refused 1 "image name" image import "Bad Name" "$tmpdir/text.txt"
echo "== images on Ceph RBD, asked of a daemon with no ceph-conf"
refused 1 "not connected to Ceph.*ceph-conf" image add onrbd --rbd rbd/golden@v1
refused 1 "not connected to Ceph.*ceph-conf" image import onrbd "$tmpdir/other.raw" --rbd rbd
refused 2 "a FILE or --rbd .*not both" image add onrbd "$tmpdir/other.raw" --rbd rbd/golden@v1
api_refused 503 "not connected to Ceph" POST /v1/images '{"name": "r", "rbd": "rbd/golden@v1"}'
api_refused 400 "without" POST /v1/images '{"name": "r", "rbd": "rbd/golden@v1", "path": "/x.raw"}'
api_refused 400 "for an import" POST /v1/images '{"name": "r", "path": "/x.raw", "rbd_pool": "rbd"}'
# After the failures the name is free: a real import works.
qemu-img convert -f raw -O qcow2 "$tmpdir/other.raw" "$tmpdir/other.qcow2"
ctl_ok image import imp "$tmpdir/other.qcow2"
same iqn.2024-01.test:r "$tmpdir/other.raw" iqn.2026-11.org.pristine:imp

echo "== a draft on a version that already stacks the most layers a chain reads (250)"
make_image "$tmpdir/deep.raw" 1
ctl_ok image add deep "$tmpdir/deep.raw"
for i in $(seq 1 250); do
	a=$(api POST /v1/images/deep/edit '{"client": "iqn.2024-01.test:m"}')
	b=$(api POST /v1/images/deep/commit "{\"message\": \"c$i\"}")
	[ "${a%% *} ${b%% *}" = "200 200" ] || fail "edit/commit $i of deep: $a / $b"
done
# Its commit would make v252 with 251 layers: unreadable, and not flattenable.
refused 1 "stacks 250 layers.*flatten" image edit deep --client iqn.2024-01.test:m
ctl_ok image flatten deep
ctl_ok image edit deep --client iqn.2024-01.test:m
ctl_ok image commit deep -m "on the flat v251"
same iqn.2024-01.test:deepreader "$tmpdir/deep.raw" iqn.2026-11.org.pristine:deep

echo "$n refused cases, state unchanged by each"
daemon_alive
stop_daemon
echo PASS
