#!/usr/bin/env python3
"""bench/logvol.py - overlay metadata log bytes per flush in the worst
case: N random 4 KiB writes into a fresh 1 GiB overlay, each followed by
SYNCHRONIZE CACHE(10), so every write is one log record of its own.
Prints the log's growth per flush and the writes+flushes per second.
Prints numbers; never passes or fails on them.

    python3 bench/logvol.py [--binary build/pristined] [--writes 3000]

The daemon is started by tests/lib/iscsi_initiator.py's Daemon on a free
loopback port (release build by default).  3000 records stay far below
the 4 MiB after which the log is folded into a checkpoint.
"""
import argparse
import os
import random
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import iscsi_initiator as I  # noqa: E402

INI = "iqn.2024-01.bench.pristine:logvol"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(TOP, "build", "pristined"))
    ap.add_argument("--writes", type=int, default=3000)
    a = ap.parse_args()
    d = I.Daemon(mib=1024, writable=True)
    d.binary = a.binary
    d.start()
    try:
        s = d.session(initiator_name=INI)
        s.login()
        s.ready()
        rnd = random.Random(1)
        blocks = (1024 << 20) // 4096
        sync = bytes([0x35]) + bytes(9)
        log = os.path.join(d.state, "overlays", INI, "log")
        size0 = os.path.getsize(log) if os.path.exists(log) else 0
        t0 = time.monotonic()
        for _ in range(a.writes):
            t = s.write(rnd.randrange(blocks) * 8, rnd.randbytes(4096))
            if t.status != 0 or s.command(sync).status != 0:
                print("logvol.py: a write or flush failed", file=sys.stderr)
                return 1
        dt = time.monotonic() - t0
        size = os.path.getsize(log)
        s.logout()
        print("overlay log: %d flushed 4 KiB writes, %d -> %d bytes: %.1f bytes per flush, "
              "%.0f writes+flushes/s (%s)" % (a.writes, size0, size, (size - size0) / a.writes,
                                              a.writes / dt, a.binary))
        print("RESULT label=logvol writes=%d bytes_per_flush=%.1f rate=%.0f"
              % (a.writes, (size - size0) / a.writes, a.writes / dt))
    finally:
        d.stop()
        d.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
