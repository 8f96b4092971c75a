#!/usr/bin/env bash
# Prometheus scrapes pristined (issue 16, "Metrics"): a real prometheus
# (Debian's) in a temporary directory scrapes [server] metrics-listen every
# second, and PromQL through its HTTP API (/api/v1/query) must return the
# exact counts of a known workload.
#   - /metrics passes `promtool check metrics` with nothing to say, before
#     and after the workload; other paths are 404, other methods 405;
#   - qemu-io (libiscsi) as client pcx writes W bytes in NW commands and
#     reads R bytes in NR: pristine_write_bytes_total{client="pcx"} = W,
#     pristine_write_commands_total = NW, pristine_read_bytes_total = R,
#     pristine_read_commands_total = NR, the image's counters the same,
#     the latency histograms count NR and NW commands, pcy (idle) stays 0;
#   - an unknown initiator (enroll = deny) is refused: it counts in
#     pristine_refused_logins_total{reason="unknown"}; a CHAP client
#     logging in without CHAP counts under reason="chap";
#   - `pristinectl client reset pcx` counts in pristine_resets_total;
#   - pcx's logins began a boot: pristine_boots_total >= 1;
#   - GET /v1/stats carries the same numbers under the names the console reads;
#   - a boot: the boot endpoint serves pcx its script, pcx reads for ~2 s
#     then stops; 5 s later the boot has ended: pristine_boots_total and
#     pristine_boot_duration_seconds_count went up by one, and
#     pristine_last_boot_seconds is the script-to-last-read time (2 s of
#     reads apart, plus qemu-io's start: 2-10 s);
#   - with build/faultinject.so (make check builds it): reads of the golden
#     image made to fail with EIO give pcy's READ a MEDIUM ERROR, which
#     counts in pristine_io_errors_total and the image's, and no bytes.
. "$(dirname "$0")/../lib/common.sh"

for tool in prometheus promtool qemu-io curl python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (make deps)"
done
[ -x "$PRISTINED" ] || skip "$PRISTINED not built (make asan)"
CTL=$BUILD/pristinectl
[ -x "$CTL" ] || skip "$CTL not built (make)"

PROM_PID=""
cleanup() {
	if [ -n "$PROM_PID" ] && kill -0 "$PROM_PID" 2>/dev/null; then
		kill -TERM "$PROM_PID"; wait "$PROM_PID" 2>/dev/null
	fi
	cleanup_common
}
trap cleanup EXIT

PORT=$(free_port)
MPORT=$(free_port)
while [ "$MPORT" = "$PORT" ]; do MPORT=$(free_port); done
BPORT=$(free_port)
while [ "$BPORT" = "$PORT" ] || [ "$BPORT" = "$MPORT" ]; do BPORT=$(free_port); done
PX=iqn.2026-12.org.example:pcx
PY=iqn.2026-12.org.example:pcy
make_image "$tmpdir/disk.raw" 16
cat >"$tmpdir/p.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
state = $tmpdir/state
metrics-listen = 127.0.0.1:$MPORT
boot-listen = 127.0.0.1:$BPORT
[defaults]
enroll = deny
[image win10]
path = $tmpdir/disk.raw
[client pcx]
initiator = $PX
mac = 52:54:00:00:00:0a
policy = persistent
[client pcy]
initiator = $PY
[client pcz]
initiator = iqn.2026-12.org.example:pcz
chap-user = pcz
chap-secret = metrics-test-0123
CONF
chmod 600 "$tmpdir/p.conf"
# The daemon runs under the fault shim (no rule yet) when it is built.
SHIM=$BUILD/faultinject.so
FAULT_CTL=$tmpdir/faults
: >"$FAULT_CTL"
if [ -r "$SHIM" ]; then
	asanrt=$(ldd "$PRISTINED" | sed -n 's/.*libasan\.so[.0-9]* => \([^ ]*\).*/\1/p')
	LD_PRELOAD="$asanrt $SHIM" FAULT_CTL=$FAULT_CTL start_daemon_conf "$tmpdir/p.conf"
else
	start_daemon_conf "$tmpdir/p.conf"
fi
TARGET=$(sed -n 's/.*target \(iqn[^ ]*\) LUN.*/\1/p' "$DLOG" | head -n 1)
[ -n "$TARGET" ] || { cat "$DLOG"; fail "no target name in the log"; }
M=http://127.0.0.1:$MPORT/metrics

echo "== /metrics before any I/O: promtool check metrics"
curl -sf "$M" >"$tmpdir/m0.txt" || fail "GET /metrics failed"
out=$(promtool check metrics <"$tmpdir/m0.txt" 2>&1) || { echo "$out"; fail "promtool check metrics failed"; }
[ -z "$out" ] || { echo "$out"; fail "promtool check metrics has something to say"; }
grep -q '^pristine_read_bytes_total{client="pcx",image="win10"} 0$' "$tmpdir/m0.txt" ||
	{ cat "$tmpdir/m0.txt"; fail "pcx's read counter is not there at 0"; }

echo "== other paths and methods"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")
[ "$code" = 404 ] || fail "GET / answered $code, not 404"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/../metrics/x")
[ "$code" = 404 ] || fail "GET /../metrics/x answered $code, not 404"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x=1 "$M")
[ "$code" = 405 ] || fail "POST /metrics answered $code, not 405"

echo "== prometheus"
PPORT=$(free_port)
mkdir -p "$tmpdir/prom"
cat >"$tmpdir/prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pristine
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
YML
promtool check config "$tmpdir/prom/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file="$tmpdir/prom/prometheus.yml" --storage.tsdb.path="$tmpdir/prom/data" \
	--web.listen-address="127.0.0.1:$PPORT" >"$tmpdir/prom/log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null 2>&1 && break
	kill -0 "$PROM_PID" 2>/dev/null || { cat "$tmpdir/prom/log"; fail "prometheus exited"; }
	sleep 0.2
done
curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null || { cat "$tmpdir/prom/log"; fail "prometheus not ready"; }

# q PROMQL: the value of the query's single result ("" when none).
q() {
	curl -s --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
	python3 -c 'import json,sys
d=json.load(sys.stdin); r=d.get("data",{}).get("result",[])
print(r[0]["value"][1] if len(r)==1 else "")'
}
# expect_q PROMQL VALUE: wait (up to 20 s: a few scrapes) until it is VALUE.
expect_q() {
	local v=""
	for _ in $(seq 1 40); do
		v=$(q "$1")
		[ "$v" = "$2" ] && { echo "   $1 = $v"; return 0; }
		sleep 0.5
	done
	fail "PromQL $1 = '$v', expected $2"
}
expect_q 'up{job="pristine"}' 1

echo "== workload as pcx"
opts() { echo "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TARGET,lun=0,initiator-name=$1"; }
# writes: 1 MiB + 64 KiB + 4 KiB + 512 B; reads: 512 KiB + 4 KiB + 8 KiB
W=$((1048576 + 65536 + 4096 + 512)); NW=4
R=$((524288 + 4096 + 8192)); NR=3
timeout -k 5 60 qemu-io --image-opts "$(opts $PX)" -c "write -P 0xab 0 1M" -c "write -P 0xcd 2M 64k" \
	-c "write 4M 4k" -c "write 6M 512" >"$tmpdir/q1.txt" 2>&1 || { cat "$tmpdir/q1.txt"; fail "qemu-io writes"; }
timeout -k 5 60 qemu-io --image-opts "$(opts $PX)" -c "read -P 0xab 0 512k" -c "read -P 0xcd 2M 4k" \
	-c "read 8M 8k" >"$tmpdir/q2.txt" 2>&1 || { cat "$tmpdir/q2.txt"; fail "qemu-io reads"; }
grep -q "Pattern verification failed" "$tmpdir/q2.txt" && { cat "$tmpdir/q2.txt"; fail "read back wrong data"; }

expect_q 'pristine_write_bytes_total{client="pcx"}' "$W"
expect_q 'pristine_write_commands_total{client="pcx"}' "$NW"
expect_q 'pristine_read_bytes_total{client="pcx"}' "$R"
expect_q 'pristine_read_commands_total{client="pcx"}' "$NR"
expect_q 'pristine_image_write_bytes_total{image="win10"}' "$W"
expect_q 'pristine_image_read_bytes_total{image="win10"}' "$R"
expect_q 'pristine_read_latency_seconds_count{client="pcx"}' "$NR"
expect_q 'pristine_write_latency_seconds_bucket{client="pcx",le="+Inf"}' "$NW"
expect_q 'pristine_io_errors_total{client="pcx"}' 0
expect_q 'pristine_write_bytes_total{client="pcy"}' 0
expect_q 'pristine_overlay_bytes{client="pcy"}' 0
expect_q 'pristine_boots_total{client="pcx"} >= bool 1' 1

echo "== a refused login (unknown initiator, enroll = deny)"
if timeout -k 5 30 qemu-io --image-opts "$(opts iqn.2026-12.org.example:stranger)" -c "read 0 512" \
	>"$tmpdir/q3.txt" 2>&1; then
	cat "$tmpdir/q3.txt"; fail "an unknown initiator logged in with enroll = deny"
fi
expect_q 'pristine_refused_logins_total{reason="unknown"} >= bool 1' 1
expect_q 'pristine_refused_logins_total{reason="address"}' 0
expect_q 'pristine_refused_logins_total{reason="chap"}' 0
if timeout -k 5 30 qemu-io --image-opts "$(opts iqn.2026-12.org.example:pcz)" -c "read 0 512" \
	>"$tmpdir/q3.txt" 2>&1; then
	cat "$tmpdir/q3.txt"; fail "a CHAP client logged in without CHAP"
fi
expect_q 'pristine_refused_logins_total{reason="chap"} >= bool 1' 1

echo "== a reset"
"$CTL" --socket "$tmpdir/state/pristined.sock" client reset pcx >"$tmpdir/r.txt" 2>&1 ||
	{ cat "$tmpdir/r.txt"; fail "client reset pcx"; }
expect_q 'pristine_resets_total{client="pcx"}' 1
expect_q 'pristine_server_resets_total' 1
expect_q 'pristine_overlay_bytes{client="pcx"}' 0
# the counters live with the client, not its overlay: a reset keeps them
expect_q 'pristine_write_bytes_total{client="pcx"}' "$W"

echo "== /metrics after the workload: promtool check metrics"
curl -sf "$M" >"$tmpdir/m1.txt" || fail "GET /metrics failed"
out=$(promtool check metrics <"$tmpdir/m1.txt" 2>&1) || { echo "$out"; fail "promtool check metrics failed"; }
[ -z "$out" ] || { echo "$out"; fail "promtool check metrics has something to say"; }

echo "== GET /v1/stats"
curl -sf --unix-socket "$tmpdir/state/pristined.sock" http://x/v1/stats >"$tmpdir/stats.json" ||
	fail "GET /v1/stats failed"
python3 - "$tmpdir/stats.json" "$W" "$NW" "$R" "$NR" <<'PY' || fail "GET /v1/stats has wrong numbers"
import json, sys
d = json.load(open(sys.argv[1])); W, NW, R, NR = map(int, sys.argv[2:])
c = {x["name"]: x for x in d["clients"]}["pcx"]
want = {"read_bytes": R, "read_cmds": NR, "write_bytes": W, "write_cmds": NW, "errors": 0,
        "sessions": 0, "overlay_bytes": 0, "resets": 1, "image": "win10", "version": 1}
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
for k in ("quota_bytes", "boots", "last_boot_seconds", "initiator"):
    if k not in c: bad[k] = "missing"
s = d["server"]
for k, v in {"read_bytes": R, "write_bytes": W, "read_cmds": NR, "write_cmds": NW, "resets": 1}.items():
    if s.get(k) != v: bad["server." + k] = (s.get(k), v)
for k in ("errors", "sessions", "boots", "refused_logins"):
    if k not in s: bad["server." + k] = "missing"
if s.get("refused_logins", 0) < 1: bad["server.refused_logins"] = s.get("refused_logins")
img = {x["name"]: x for x in d["images"]}["win10"]
if img.get("write_bytes") != W or img.get("read_cmds") != NR: bad["image"] = img
if not isinstance(d.get("time_ms"), int): bad["time_ms"] = d.get("time_ms")
if bad:
    print(bad); sys.exit(1)
PY

if [ -r "$SHIM" ]; then
	echo "== an I/O error: the golden image's reads fail (EIO) for pcy"
	echo "ops=read path=*/disk.raw errno=EIO from=$((10 << 20)) to=$((11 << 20))" >"$FAULT_CTL.new"
	mv "$FAULT_CTL.new" "$FAULT_CTL"
	if timeout -k 5 60 qemu-io --image-opts "$(opts $PY)" -c "read 10M 4k" >"$tmpdir/q4.txt" 2>&1 &&
	   ! grep -q -i "error" "$tmpdir/q4.txt"; then
		cat "$tmpdir/q4.txt"; fail "a read of a failing golden block succeeded"
	fi
	: >"$FAULT_CTL.new"; mv "$FAULT_CTL.new" "$FAULT_CTL"
	[ -s "$FAULT_CTL.hits" ] || { cat "$DLOG"; fail "the shim injected nothing"; }
	expect_q 'pristine_io_errors_total{client="pcy"} >= bool 1' 1
	expect_q 'pristine_image_io_errors_total{image="win10"} >= bool 1' 1
	expect_q 'pristine_read_bytes_total{client="pcy"}' 0
	expect_q 'pristine_io_errors_total{client="pcx"}' 0
fi

echo "== a boot of pcx through the boot endpoint"
# Its earlier logins began a boot too: wait until that one has settled.
for _ in $(seq 1 30); do
	curl -sf --unix-socket "$tmpdir/state/pristined.sock" http://x/v1/stats |
		python3 -c 'import json,sys
c={x["name"]:x for x in json.load(sys.stdin)["clients"]}["pcx"]; sys.exit(1 if c["booting"] else 0)' && break
	sleep 0.5
done
sleep 1.5     # a scrape after the settle
b0=$(q 'pristine_boots_total{client="pcx"}')
c0=$(q 'pristine_boot_duration_seconds_count{client="pcx"}')
[ -n "$b0" ] && [ -n "$c0" ] || fail "no boot metrics for pcx"
curl -sf "http://127.0.0.1:$BPORT/boot.ipxe?mac=52-54-00-00-00-0a" >"$tmpdir/script.txt" ||
	fail "the boot endpoint did not answer pcx"
grep -q "sanboot" "$tmpdir/script.txt" || { cat "$tmpdir/script.txt"; fail "no sanboot in pcx's script"; }
expect_q 'pristine_boots_total{client="pcx"}' $((b0 + 1))
timeout -k 5 60 qemu-io --image-opts "$(opts $PX)" -c "read 0 4k" -c "sleep 1000" -c "read 4k 4k" \
	-c "sleep 1000" -c "read 8k 4k" >"$tmpdir/q5.txt" 2>&1 || { cat "$tmpdir/q5.txt"; fail "qemu-io boot reads"; }
sleep 5
expect_q 'pristine_boot_duration_seconds_count{client="pcx"}' $((c0 + 1))
expect_q 'pristine_last_boot_seconds{client="pcx"} >= bool 2' 1
expect_q 'pristine_last_boot_seconds{client="pcx"} <= bool 10' 1
curl -sf --unix-socket "$tmpdir/state/pristined.sock" http://x/v1/clients/pcx >"$tmpdir/pcx.json" ||
	fail "GET /v1/clients/pcx"
python3 - "$tmpdir/pcx.json" <<'PY' || fail "client JSON lacks its boots"
import json, sys
c = json.load(open(sys.argv[1]))
c = c.get("client", c)
ok = c.get("boots", 0) >= 2 and isinstance(c.get("last_boot_seconds"), float) and c.get("last_boot", 0) > 0
print("boots", c.get("boots"), "last_boot_seconds", c.get("last_boot_seconds"))
sys.exit(0 if ok else 1)
PY

kill -TERM "$PROM_PID"; wait "$PROM_PID" 2>/dev/null; PROM_PID=""
stop_daemon
echo "PASS"
