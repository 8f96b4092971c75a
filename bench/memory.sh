#!/usr/bin/env bash
# bench/memory.sh - pristined's memory per idle session and per GiB an
# overlay holds (issue 6: "at most 256 KiB per idle session, overlay
# metadata at most 64 KiB of RAM per GiB written").  Prints numbers; never
# passes or fails on them.
#
#   bash bench/memory.sh          (after `make bench-build`)
#
# Method: the release pristined on a BENCH_MEM_MIB (1024) MiB image of
# random data.  A warm-up client writes and reads 16 MiB first, so the
# code paths, malloc arenas and thread caches that any busy client needs
# are paid before anything is measured.  RSS is VmRSS of /proc/PID/status,
# read after the load settled.
#   1. overlay metadata: client A writes every 4 KiB block of the image
#      once (a random permutation, QD32, iscsi_bench) and pays the arenas
#      any busy writer needs; then client C writes the first 1/8 of the
#      image (every block of it) into
#      its own overlay and client B all of them into another: a new
#      client's fixed costs (session, thread, overlay) are in both, so
#      (B - C) / (7/8 of the image) is what a GiB held costs.  Measured before and after B's SYNCHRONIZE
#      CACHE: between two flushes the overlay also keeps a bitmap of the
#      blocks changed since the last one (overlay_map.c).
#   2. idle sessions: BENCH_MEM_SESSIONS (200) clients never seen before
#      log in (our Python initiator, one session each, no I/O): each costs
#      a session, a thread and a new, empty overlay.  They log out, then
#      log in again as known clients: a session and a thread only (glibc
#      reuses the stacks of ended threads, so this is the lower bound).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init memory
MIB=${BENCH_MEM_MIB:-1024}
N=${BENCH_MEM_SESSIONS:-200}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
head -c $((MIB << 20)) /dev/urandom >"$dir/g.img"
"$PRISTINED" --image "$dir/g.img" --listen "127.0.0.1:$port" --state "$dir/state" \
	--target iqn.2026-11.org.pristine:mem >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$dir/log" && break; sleep 0.1; done
grep -q listening "$dir/log" || { cat "$dir/log"; exit 1; }
T=iqn.2026-11.org.pristine:mem
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
settle() { sync; sleep 1; }
blocks=$((MIB * 256))

"$BENCH" -p "127.0.0.1:$port" -T "$T" -I iqn.2026-11.bench:warm -w randwrite -n 4096 -r 16 \
	-L warm >/dev/null
"$BENCH" -p "127.0.0.1:$port" -T "$T" -I iqn.2026-11.bench:warm -w randread -n 4096 -r 16 \
	-L warm >/dev/null
settle
r0=$(rss)

settle
a0=$(rss)
"$BENCH" -p "127.0.0.1:$port" -T "$T" -I iqn.2026-11.bench:a -w randwrite -n "$blocks" -t 0 -s 7 -L a \
	| grep -E '^(RESULT|  )' | head -3
settle
a1=$(rss)
"$BENCH" -p "127.0.0.1:$port" -T "$T" -I iqn.2026-11.bench:c -w randwrite -n $((blocks / 8)) -r $((MIB / 8)) -t 0 -s 5 \
	-L c | grep -E '^(RESULT|  )' | head -3
settle
c1=$(rss)
"$BENCH" -p "127.0.0.1:$port" -T "$T" -I iqn.2026-11.bench:b -w randwrite -n "$blocks" -t 0 -s 9 -L b \
	| grep -E '^(RESULT|  )' | head -3
settle
b1=$(rss)
# B flushes (SYNCHRONIZE CACHE): the dirty-chunk bitmaps, kept only
# between two flushes, are freed.
python3 - "$port" "$T" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "lib"))
import iscsi_initiator as I
s = I.Session("127.0.0.1", int(sys.argv[1]), "iqn.2026-11.bench:b", target_name=sys.argv[2])
s.login()
t = s.command(bytes([0x35] + [0] * 9))
assert t.status == 0, "SYNCHRONIZE CACHE failed: %r" % t.status
s.logout()
s.close()
EOF
settle
b2=$(rss)
gib=$(awk -v m="$MIB" 'BEGIN {print m / 1024}')
awk -v a="$((a1 - a0))" -v c="$((c1 - a1))" -v b="$((b1 - c1))" -v f="$((b2 - c1))" -v g="$gib" \
	-v mib="$MIB" 'BEGIN {
	printf "overlay A, %d MiB of 4 KiB blocks written:      RSS +%d KiB (first busy writer: pays the arenas)\n", mib, a
	printf "overlay C, %d MiB of them, its own overlay:       RSS +%d KiB\n", mib / 8, c
	printf "overlay B, %d MiB, its own overlay:               RSS +%d KiB unflushed, +%d KiB after SYNCHRONIZE CACHE\n", mib, b, f
	printf "per GiB held, (B - C) / (7/8 of the image):      %.1f KiB unflushed, %.1f KiB flushed\n", (b - c) / (g * 7 / 8), (f - c) / (g * 7 / 8)
	printf "RESULT label=memory overlay_first_kib=%d overlay_unflushed_kib_per_gib=%.1f overlay_kib_per_gib=%.1f\n", a, (b - c) / (g * 7 / 8), (f - c) / (g * 7 / 8)
}'

settle
python3 - "$port" "$T" "$N" "$pid" <<'EOF'
import os, sys, time
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "lib"))
import iscsi_initiator as I
port, target, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def rss():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

def login_all():
    out = []
    for i in range(n):
        s = I.Session("127.0.0.1", port, "iqn.2026-11.bench:idle%d" % i, target_name=target)
        s.login()
        out.append(s)
    time.sleep(1)
    return out

r0 = rss()
ss = login_all()
r1 = rss()
for s in ss:
    s.logout()
    s.close()
time.sleep(1)
r2 = rss()
ss = login_all()
r3 = rss()
print("idle sessions, new clients (session + thread + empty overlay): %d x -> +%d KiB, %.1f KiB each"
      % (n, r1 - r0, (r1 - r0) / n))
print("idle sessions, known clients (session + thread):               %d x -> +%d KiB, %.1f KiB each"
      % (n, r3 - r2, (r3 - r2) / n))
print("RESULT label=memory idle_new_kib=%.1f idle_known_kib=%.1f" % ((r1 - r0) / n, (r3 - r2) / n))
for s in ss:
    s.logout()
    s.close()
EOF
echo "pristined RSS at the end: $(rss) KiB (start of measurements: $r0 KiB)"
