#!/usr/bin/env bash
# One parser per kind of value (issue 13): the same SIZE, NAME and TIME
# strings are taken - and the same bad ones refused - by pristined's
# options, the configuration file (pristined -c) and the admin API
# (pristinectl, and the API's "quota" string key, against a running daemon).
#   options:  --quota SIZE, --reset-at TIME (quick mode has no name option)
#   file:     quota = SIZE, [client NAME], reset-at = TIME
#   API:      pristinectl client add --quota/--name/--reset-at, and
#             POST /v1/clients {"quota": "SIZE"} straight to the socket
# A good size must also mean the same number of bytes everywhere.
. "$(dirname "$0")/../lib/common.sh"
CTL=$BUILD/pristinectl
[ -x "$PRISTINED" ] && [ -x "$CTL" ] || skip "build first (make all asan)"
command -v curl >/dev/null || skip "curl not installed"

d=$tmpdir
truncate -s 4M "$d/g.img"
G=$d/g.img
n63=$(printf 'a%.0s' $(seq 1 63)); n64=${n63}a
SIZES_OK="0=0 4096=4096 100B=100 512M=536870912 20G=21474836480 20GiB=21474836480
	20GB=21474836480 20Gi=21474836480 1t=1099511627776 8388607T=9223370937343148032"
SIZES_BAD="20X -1G 1.5G 99999999999999999999 8388608T G 20iB"
NAMES_OK="pc01 a 0-x $n63"
NAMES_BAD="PC01 -x a_b a.b $n64"
TIMES_OK="00:00 7:05 23:59"
TIMES_BAD="24:00 3 12:60 3:5 7:5x"

# ---- options: a deliberately bad --enroll keeps the daemon from starting;
# the value under test must add no message of its own (good) or one (bad).
opt_check() {   # opt_check good|bad OPTION VALUE [more args]
	local want=$1 opt=$2 val=$3 err rc
	shift 3
	err=$(timeout 20 "$PRISTINED" --image "$G" --state "$d/s-opt" "$@" "$opt" "$val" \
		--enroll bogus 2>&1 >/dev/null)
	rc=$?
	[ "$rc" -eq 2 ] && grep -qF "pristined: --enroll: 'bogus'" <<<"$err" \
		|| fail "options $opt $val: exit $rc: $err"
	if [ "$want" = good ]; then
		grep -qF -- "pristined: $opt:" <<<"$err" && fail "options refused $opt $val: $err"
	else
		grep -qF -- "pristined: $opt: '$val'" <<<"$err" || fail "options took $opt $val: $err"
	fi
	return 0
}
for s in $SIZES_OK; do opt_check good --quota "${s%%=*}"; done
for s in $SIZES_BAD; do opt_check bad --quota "$s"; done
for t in $TIMES_OK; do opt_check good --reset-at "$t" --policy scheduled; done
for t in $TIMES_BAD; do opt_check bad --reset-at "$t" --policy scheduled; done

# ---- the file: a deliberately unknown key keeps it from loading; the
# value under test must add no message (good) or its own (bad).
conf_check() {  # conf_check good|bad KEY-IN-MESSAGE BODY
	local want=$1 key=$2 body=$3 err rc
	printf '[server]\nstate = %s/s-conf\nbogus = 1\n[image g]\npath = %s\n%s\n' "$d" "$G" "$body" \
		>"$d/t.conf"
	err=$(timeout 20 "$PRISTINED" -c "$d/t.conf" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" -eq 2 ] && grep -qF "unknown key 'bogus'" <<<"$err" || fail "file $body: exit $rc: $err"
	if [ "$want" = good ]; then
		grep -qF -- "$key" <<<"$err" && fail "the file refused: $body: $err"
	else
		grep -qF -- "$key" <<<"$err" || fail "the file took: $body: $err"
	fi
	return 0
}
for s in $SIZES_OK; do conf_check good "quota:" "[defaults]
quota = ${s%%=*}"; done
for s in $SIZES_BAD; do conf_check bad "quota: '$s'" "[defaults]
quota = $s"; done
for nm in $NAMES_OK; do conf_check good "client name" "[client $nm]
initiator = iqn.2024-01.same:x"; done
for nm in $NAMES_BAD; do conf_check bad "invalid client name" "[client $nm]
initiator = iqn.2024-01.same:x"; done
for t in $TIMES_OK; do conf_check good "reset-at:" "[defaults]
policy = scheduled
reset-at = $t"; done
for t in $TIMES_BAD; do conf_check bad "reset-at: '$t'" "[defaults]
policy = scheduled
reset-at = $t"; done

# A file that loads, with a good size of each spelling, really starts.
PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nstate = %s/s-run\n[defaults]\nquota = 20GiB\n[image g]\npath = %s\n[client pc01]\ninitiator = iqn.2024-01.same:pc01\nquota = 512M\n' \
	"$PORT" "$d" "$G" >"$d/run.conf"
start_daemon_conf "$d/run.conf"
"$CTL" --state "$d/s-run" --json client show pc01 | grep -q '"quota_bytes": 536870912' \
	|| fail "quota = 512M is not 536870912 bytes in the API"
stop_daemon

# ---- the API, against a quick-mode daemon started with a size string.
start_daemon --image "$G" --state "$d/s-api" --quota 20GiB --nop-interval 0
SOCK=$d/s-api/pristined.sock
api_add() {     # api_add JSON: prints the HTTP status, body in $d/api.out
	curl -s --unix-socket "$SOCK" -o "$d/api.out" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' -d "$1" http://pristined/v1/clients
}
i=0
for s in $SIZES_OK; do
	i=$((i + 1)); val=${s%%=*}; bytes=${s#*=}
	st=$(api_add "{\"initiator\": \"iqn.2024-01.same:api$i\", \"quota\": \"$val\"}")
	[ "$st" = 200 ] || [ "$st" = 201 ] || fail "API refused quota \"$val\": $st $(cat "$d/api.out")"
	"$CTL" --state "$d/s-api" --json client show "iqn.2024-01.same:api$i" \
		| grep -q "\"quota_bytes\": $bytes" || fail "API quota \"$val\" is not $bytes bytes"
	"$CTL" --state "$d/s-api" client add "iqn.2024-01.same:ctl$i" --quota "$val" >/dev/null \
		|| fail "pristinectl refused --quota $val"
	"$CTL" --state "$d/s-api" --json client show "iqn.2024-01.same:ctl$i" \
		| grep -q "\"quota_bytes\": $bytes" || fail "pristinectl --quota $val is not $bytes bytes"
done
for s in $SIZES_BAD; do
	i=$((i + 1))
	st=$(api_add "{\"initiator\": \"iqn.2024-01.same:api$i\", \"quota\": \"$s\"}")
	[ "$st" = 400 ] && grep -qF "'$s'" "$d/api.out" || fail "API took quota \"$s\": $st $(cat "$d/api.out")"
	"$CTL" --state "$d/s-api" client add "iqn.2024-01.same:ctl$i" --quota "$s" >/dev/null 2>"$d/ctl.err" \
		&& fail "pristinectl took --quota $s"
	grep -qF -- "--quota: '$s'" "$d/ctl.err" || fail "pristinectl --quota $s: $(cat "$d/ctl.err")"
done
for nm in $NAMES_OK; do
	i=$((i + 1))
	"$CTL" --state "$d/s-api" client add "iqn.2024-01.same:n$i" --name "$nm" >/dev/null 2>"$d/ctl.err" \
		|| fail "API refused name $nm: $(cat "$d/ctl.err")"
done
for nm in $NAMES_BAD; do
	i=$((i + 1))
	"$CTL" --state "$d/s-api" client add "iqn.2024-01.same:n$i" --name "$nm" >/dev/null 2>"$d/ctl.err" \
		&& fail "API took name $nm"
	grep -q "is not a valid client name" "$d/ctl.err" || fail "API name $nm: $(cat "$d/ctl.err")"
done
for t in $TIMES_OK; do
	i=$((i + 1))
	"$CTL" --state "$d/s-api" client add "iqn.2024-01.same:t$i" --policy scheduled --reset-at "$t" \
		>/dev/null 2>"$d/ctl.err" || fail "API refused reset-at $t: $(cat "$d/ctl.err")"
done
for t in $TIMES_BAD; do
	i=$((i + 1))
	"$CTL" --state "$d/s-api" client add "iqn.2024-01.same:t$i" --policy scheduled --reset-at "$t" \
		>/dev/null 2>"$d/ctl.err" && fail "API took reset-at $t"
	grep -qF "'$t' is not a time of day HH:MM" "$d/ctl.err" || fail "API reset-at $t: $(cat "$d/ctl.err")"
done
stop_daemon
echo "ok: sizes, names and times taken and refused alike by options, file and API"
