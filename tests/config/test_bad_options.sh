#!/usr/bin/env bash
# Bad options of pristined (issue 13): a table of bad options and values,
# each run against the daemon; each must end it with exit status 2, before
# it serves anything, with the message "pristined: --OPTION: what is wrong"
# (the expected text below, in full up to the value's explanation).  Then:
# several bad options in one command line are all reported; a bad
# configuration file is exit status 2 too.
. "$(dirname "$0")/../lib/common.sh"
[ -x "$PRISTINED" ] || skip "build first (make asan)"

d=$tmpdir
truncate -s 1M "$d/g.img"
G=$d/g.img
cat >"$d/ok.conf" <<EOF2
[server]
listen = 127.0.0.1:$(free_port)
state = $d/state-conf
[image g]
path = $G
EOF2
printf '[image g]\npath = %s\n[defaults]\nquota = 20X\n' "$G" >"$d/bad.conf"
long=$d/$(printf 'x%.0s' $(seq 1 120))
n=0

# bad WANT ARGS...: pristined ARGS... exits 2 and says WANT on stderr.
bad() {
	local want=$1 rc err
	shift
	n=$((n + 1))
	err=$(timeout 20 "$PRISTINED" "$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" -eq 2 ] || fail "pristined $*: exit status $rc, not 2 (stderr: $err)"
	case $err in
	*"$want"*) ;;
	*) fail "pristined $*: stderr lacks '$want': $err" ;;
	esac
}

bad "pristined: --image: needs a value"                       --image
bad "pristined: --image: missing: give --image PATH"          --listen 127.0.0.1:3260
bad "pristined: --image: given twice"                         --image "$G" --image "$G"
bad "pristined: --image: empty value"                         --image ""
bad "pristined: --quota: '20X' is not a size"                 --image "$G" --quota 20X
bad "pristined: --quota: '-1G' is not a size"                 --image "$G" --quota -1G
bad "pristined: --quota: '99999999999999999999' is too large" --image "$G" --quota 99999999999999999999
bad "pristined: --quota: '8388608T' is too large"             --image "$G" --quota 8388608T
bad "pristined: --quota: empty value"                         --image "$G" --quota=
bad "pristined: --store-floor: '1.5G' is not a size"          --image "$G" --store-floor 1.5G
bad "pristined: --block-size: '4096junk' is not 512 or 4096"  --image "$G" --block-size 4096junk
bad "pristined: --block-size: '1024' is not 512 or 4096"      --image "$G" -b 1024
bad "pristined: --target: 'foo' is not a valid iSCSI name"    --image "$G" --target foo
bad "pristined: --target: 'iqn.2024-01' is not a valid iSCSI name" --image "$G" --target iqn.2024-01
bad "pristined: --nop-interval: '3601' is not a number of seconds from 0 to 3600" --image "$G" --nop-interval 3601
bad "pristined: --nop-interval: '5s' is not a number of seconds" --image "$G" -n 5s
bad "pristined: --listen: '3260' is not ADDR:PORT"            --image "$G" --listen 3260
bad "pristined: --listen: '127.0.0.1:70000' is not ADDR:PORT" --image "$G" --listen 127.0.0.1:70000
bad "pristined: --listen: '127.0.0.1:0' is not ADDR:PORT"     --image "$G" --listen 127.0.0.1:0
bad "pristined: --listen: 'host.example:3260' is not ADDR:PORT" --image "$G" --listen host.example:3260
bad "pristined: --listen: *:3260 given twice"                 --image "$G" --listen '*:3260' --listen '*:3260'
bad "pristined: --boot-listen: '10.0.0.1' is not ADDR:PORT"   --image "$G" --boot-listen 10.0.0.1
bad "pristined: --boot-portal: 'evil;host' is not HOST or HOST:PORT" --image "$G" --boot-portal 'evil;host'
bad "pristined: --enroll: 'maybe' is not auto or deny"        --image "$G" --enroll maybe
bad "pristined: --policy: 'nightly' is not persistent, reset-on-boot or scheduled" --image "$G" --policy nightly
bad "pristined: --policy: scheduled needs --reset-at HH:MM"   --image "$G" --policy scheduled
bad "pristined: --reset-at: '24:00' is not a time of day HH:MM" --image "$G" --policy scheduled --reset-at 24:00
bad "pristined: --reset-at: '3' is not a time of day HH:MM"   --image "$G" --policy scheduled -R 3
bad "pristined: --reset-at: only applies to --policy scheduled" --image "$G" --policy persistent --reset-at 03:00
bad "pristined: --reset-at: only applies to --policy scheduled" --image "$G" --reset-at 03:00
bad "pristined: --user: 'bad user' is not a user name"        --image "$G" --user 'bad user'
bad "pristined: --log-level: 'loud' is not error, warn, notice, info or debug" --image "$G" -v loud
bad "pristined: --boot-listen: not with --read-only"          --image "$G" --read-only --boot-listen 127.0.0.1:8180
bad "pristined: --console-listen: not with --read-only"       --image "$G" --read-only --console-listen 127.0.0.1:8443
bad "pristined: --metrics-listen: '9100' is not ADDR:PORT"   --image "$G" --metrics-listen 9100
bad "pristined: --boot-set-max: '32K' is not between 64K and 64G" --image "$G" --boot-set-max 32K
bad "pristined: --boot-set-max: 'lots' is not a size"         --image "$G" --boot-set-max lots
bad "pristined: --no-prefetch: takes no value"                --image "$G" --no-prefetch=yes
bad "pristined: --read-only: takes no value"                  --image "$G" --read-only=yes
bad "pristined: --frobnicate: unknown option"                 --image "$G" --frobnicate
bad "pristined: -Q: unknown option"                           --image "$G" -Q
bad "pristined: stray: unexpected argument"                   --image "$G" stray
bad "pristined: --socket: path longer than a Unix socket path" --image "$G" --socket "$long.sock"
bad "pristined: --state: the admin socket STATE/pristined.sock would be longer than a Unix socket path" --image "$G" --state "$long"
bad "pristined: --state: quick mode only (with --image), not with -c FILE" -c "$d/ok.conf" --state "$d/s"
bad "pristined: --image: quick mode only (with --image), not with -c FILE" -c "$d/ok.conf" --image "$G"
bad "pristined: --quota: quick mode only (with --image), not with -c FILE" -c "$d/ok.conf" --quota 1G
bad "pristined: --no-prefetch: quick mode only (with --image), not with -c FILE" -c "$d/ok.conf" --no-prefetch
bad "pristined: --enroll: quick mode only (with --image), not with -c FILE" -c "$d/ok.conf" --enroll deny
bad "$d/nonexistent.conf: No such file or directory"          -c "$d/nonexistent.conf"
bad "$d/bad.conf:4: quota: '20X' is not a size"               -c "$d/bad.conf"
bad "pristined: --config: needs a value"                      -c
bad "pristined: --quota: '5X' is not a size"                  --quota 5X --help
[ "$n" -ge 30 ] || fail "only $n bad options in the table"

# Every problem of one command line is reported, each naming its option.
err=$(timeout 20 "$PRISTINED" --image "$G" --quota 5X --block-size 1000 --enroll no 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 2 ] || fail "three bad options: exit status $rc"
for want in "--quota: '5X'" "--block-size: '1000'" "--enroll: 'no'"; do
	grep -qF -- "pristined: $want" <<<"$err" || fail "three bad options: '$want' not reported: $err"
done
[ "$(grep -c '^pristined: ' <<<"$err")" -eq 3 ] || fail "three bad options, not three messages: $err"
# Nothing was started: no state directory, no socket.
[ ! -e "$d/state-conf" ] && [ ! -e /var/lib/pristine/pristined.sock.test ] \
	|| fail "a refused start created its state directory"
# --help and --version are exit status 0 and go to stdout.
"$PRISTINED" --help | grep -q -- "--enroll auto|deny" || fail "--help does not list --enroll"
"$PRISTINED" --version | grep -qx "pristined [0-9.]*" || fail "--version"
echo "ok: $n bad options refused with exit status 2 and their message"
